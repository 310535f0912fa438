"""Where the time goes: torch.profiler tables for peer-shape training and for decoding.

    python scripts/profile_hotspots.py train                       # 30 updates after 10 warm-up
    python scripts/profile_hotspots.py train experiment=m30k_deen_15m train.precision=bf16
    python scripts/profile_hotspots.py greedy --checkpoint <run>   # test_2016_flickr, batches of 64
    python scripts/profile_hotspots.py beam5 --checkpoint <run>
    python scripts/profile_hotspots.py beam5 --checkpoint <run> --precision int8 --shortlist 10

Prints the operators by self CPU time (the figure the speed issue asks for where a target is
missed). Use 2 threads, as `make bench` does, on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import itertools

import torch
from bench import REPO, _build_run, _groups, _update, compose_preset
from torch.profiler import ProfilerActivity, profile

from nmt.config import DecodeConfig
from nmt.data.corpus import load_split
from nmt.data.prepare import prepare
from nmt.inference.decoding import load_translator, translate_lines


def profile_training(updates: int, warmup: int, overrides: list[str]) -> profile:
    root = REPO / "../shared/data/multi30k/raw"
    cfg = compose_preset(
        ["experiment=m30k_peer", f"data.root={root}", "train.device=cpu", *overrides]
    )
    run = _build_run(cfg, prepare(cfg.data, [], log=lambda _: None))
    run.model.train()
    groups = _groups(run)
    for group, _ in itertools.islice(groups, warmup):
        _update(run, group)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for group, _ in itertools.islice(groups, updates):
            _update(run, group)
    return prof


def profile_decoding(
    checkpoint: str, beam_size: int, sentences: int, precision: str, shortlist: int
) -> profile:
    loaded = load_translator(checkpoint)
    lines = load_split(loaded.data, "test_2016_flickr").src[:sentences]
    decode = DecodeConfig(  # the peers' settings, and ours
        beam_size=beam_size, alpha=1.0, batch_size=64, precision=precision, shortlist=shortlist
    )
    translate_lines(loaded, lines[:64], decode, loaded.data.max_tokens)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        translate_lines(loaded, lines, decode, loaded.data.max_tokens)
    return prof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["train", "greedy", "beam5"])
    parser.add_argument("--checkpoint", help="run directory or .pt (decoding)")
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32")
    parser.add_argument("--shortlist", type=int, default=0, help="decode.shortlist (decoding)")
    parser.add_argument(
        "overrides", nargs="*", help="config overrides for training, e.g. experiment=m30k_deen_15m"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "train":
        prof = profile_training(args.updates, warmup=10, overrides=args.overrides)
    else:
        if not args.checkpoint:
            parser.error("decoding needs --checkpoint <run directory or .pt>")
        beam = 1 if args.what == "greedy" else 5
        prof = profile_decoding(
            args.checkpoint, beam, args.sentences, args.precision, args.shortlist
        )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
