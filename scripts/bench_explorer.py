"""What the Attention tab costs: validation time and event bytes with and without the explorer's
records (``train.explore_sentences``), and the live box's answer time, on a trained checkpoint and
its own corpus.

Runs the library's ``validate`` exactly as training does, alternating ``explore_sentences=0`` and
``N`` so machine drift hits both alike, and prints the medians, the fraction and the size of one
validation's records as written to the event file. Then times what the live box runs for a
20-word validation sentence (``explore`` with the run's search: beam tree, top-k, attention).

    python scripts/bench_explorer.py --checkpoint <run>/checkpoints/best.pt \\
        [--data-root DIR] [--sentences 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from nmt.config import DataConfig
from nmt.data.prepare import prepare
from nmt.inference.decoding import load_translator
from nmt.inference.explore import explore
from nmt.tensorboard_plugin.records import summary
from nmt.training.validate import validate


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data-root", help="instead of the checkpoint's data.root")
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    translator = load_translator(args.checkpoint)
    data = DataConfig(**translator.config["data"])
    if args.data_root:
        data = replace(data, root=args.data_root)
    corpus = prepare(data, ["valid"], log=lambda _: None, vocabs=translator.vocabs)
    model, device = translator.model, torch.device("cpu")
    timings: dict[int, list[float]] = {0: [], args.sentences: []}
    explore_seconds, result = [], None
    for _ in range(args.repeats):
        for count in timings:
            result = validate(model, corpus, translator.decode, 0, 4, device, count)
            timings[count].append(result.seconds)
            if count:
                explore_seconds.append(result.explore_seconds)
                explored = result
    without = statistics.median(timings[0])
    with_records = statistics.median(timings[args.sentences])
    serialize_started = time.perf_counter()
    size = len(summary("valid", explored.explored).SerializeToString())
    serialize_seconds = time.perf_counter() - serialize_started
    print(f"cpu: {cpu_model()}, torch threads {torch.get_num_threads()}")
    print(f"checkpoint: {args.checkpoint} ({len(corpus.raw['valid']):,} validation sentences)")
    print(f"validation without records: {without:.2f} s (median of {args.repeats})")
    print(f"validation with {args.sentences} sentences' records: {with_records:.2f} s")
    cost = statistics.median(explore_seconds) + serialize_seconds
    print(
        f"explorer cost (records built and serialized): {cost:.3f} s = "
        f"{100 * cost / with_records:.1f} % of validation"
    )
    print(f"records of one validation in the event file: {size / 1e6:.2f} MB")
    sentence = next(line for line in corpus.raw["valid"].src if len(line.split()) == 20)
    live = []
    for _ in range(5):
        live_started = time.perf_counter()
        explore(model, translator.vocabs, [sentence], translator.decode)
        live.append(time.perf_counter() - live_started)
    print(
        f"live what-if, a 20-word sentence, beam {translator.decode.beam_size}: "
        f"{statistics.median(live):.2f} s (median of 5)"
    )


if __name__ == "__main__":
    main()
