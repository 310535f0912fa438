"""Interleaved A/B of two training-step choices on the peer shape, in one process.

    python scripts/ab_train_step.py recurrence                     # TeacherForcedRNN vs nn.GRU
    python scripts/ab_train_step.py adam train.precision=bf16      # fused vs for-loop Adam

``recurrence``: teacher forcing through ``nmt.model.recurrence.TeacherForcedRNN`` (weight
gradients once a batch) against the decoder's own ``nn.GRU`` stepped by autograd. ``adam``: the
fused Adam ``build_optimizer`` makes against ``torch.optim.Adam(foreach=False)``. Rounds of N
updates alternate between the two on the same model and batch stream, so a shared host's drift
hits both alike; prints target tokens/s per round and the medians. Extra arguments are config
overrides (``train.precision=bf16``, ``model.tie_embeddings=true``...).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
from bench import REPO, _build_run, _groups, _update, compose_preset

import nmt.model.decoder as decoder
from nmt.data.prepare import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["recurrence", "adam"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--updates", type=int, default=20, help="updates per round")
    parser.add_argument("--threads", type=int, default=2)
    args, overrides = parser.parse_known_args()
    torch.set_num_threads(args.threads)
    root = REPO / "../shared/data/multi30k/raw"
    cfg = compose_preset(
        ["experiment=m30k_peer", f"data.root={root}", "train.device=cpu", *overrides]
    )
    run = _build_run(cfg, prepare(cfg.data, [], log=lambda _: None))
    run.model.train()
    if args.what == "recurrence":
        rnn = decoder.TeacherForcedRNN
        variants = {"TeacherForcedRNN": rnn, "nn.GRU stepped": lambda rnn, embedded: None}
    else:
        loop = torch.optim.Adam(run.model.parameters(), lr=cfg.train.lr, foreach=False)
        variants = {"fused Adam": run.optimizer, "for-loop Adam": loop}
    groups = _groups(run)
    for group, _ in itertools.islice(groups, 5):  # warm-up
        _update(run, group)
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, choice in variants.items():
            if args.what == "recurrence":
                decoder.TeacherForcedRNN = choice
            else:
                run.optimizer = choice
            started, tokens = time.perf_counter(), 0
            for group, _ in itertools.islice(groups, args.updates):
                tokens += _update(run, group)[1]
            speeds[name].append(tokens / (time.perf_counter() - started))
            print(f"{name:>18}: {speeds[name][-1]:,.0f} target tokens/s", flush=True)
    for name, values in speeds.items():
        print(f"median {name:>18}: {statistics.median(values):,.0f} target tokens/s")


if __name__ == "__main__":
    main()
