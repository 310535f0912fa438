"""The Multi30k results rows of docs/RESULTS.md: evaluate trained runs greedy and with beam 5.

    python scripts/results_table.py runs/deen_15m runs/ende_15m [--out docs/results.json]

For each run: updates and epochs from its checkpoint, parameters, and on every test set of its
corpus BLEU/chrF/TER (cased, detokenized sacreBLEU) plus the lowercased Moses-tokenized BLEU
that published Multi30k results use, for greedy search and beam 5 (the run's own decode.alpha).
Prints markdown rows and the sacreBLEU signatures; writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import replace
from pathlib import Path

import torch

from nmt.checkpoint import load_checkpoint
from nmt.config import DataConfig, DecodeConfig
from nmt.data.corpus import load_split
from nmt.inference.decoding import load_translator
from nmt.inference.scoring import score_split


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run_figures(run_dir: Path, test_sets: list[str] | None) -> dict:
    payload = load_checkpoint(str(run_dir))
    data = DataConfig(**payload["config"]["data"])
    data = replace(data, test_sets=test_sets or data.test_sets)
    tensors = {t.data_ptr(): t.numel() for t in payload["model"].values()}  # tied counted once
    decode = DecodeConfig(**payload["config"]["decode"])
    figures = {
        "run": str(run_dir),
        "direction": f"{payload['config']['data']['src']}->{payload['config']['data']['tgt']}",
        "updates": payload["progress"]["step"],
        "epochs": payload["progress"]["epoch"],
        "parameters": sum(tensors.values()),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,  # decodes there
        "searches": {},
    }
    translator = load_translator(str(run_dir), "auto")
    test_splits = [load_split(data, name) for name in data.test_sets]
    for name, search in (("greedy", replace(decode, beam_size=1)), ("beam5", decode)):
        reports = [
            score_split(translator, split, search, data.max_tokens, tok_bleu=True)
            for split in test_splits
        ]
        figures["searches"][name] = {
            report.name: {
                s.name: {"value": round(s.value, 2), "signature": s.signature}
                for s in report.scores
            }
            for report in reports
        }
    return figures


def markdown(all_figures: list[dict]) -> str:
    lines = [
        "| run | search | test set | BLEU | chrF | TER | BLEU lc-tok |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    signatures = {}
    for figures in all_figures:
        for search, sets in figures["searches"].items():
            for test_set, scores in sets.items():
                values = {name: score["value"] for name, score in scores.items()}
                signatures.update({name: score["signature"] for name, score in scores.items()})
                lines.append(
                    f"| {Path(figures['run']).name} | {search} | {test_set} | "
                    f"{values['BLEU']:.2f} | {values['chrF']:.2f} | {values['TER']:.2f} | "
                    f"{values['BLEU-lc-tok']:.2f} |"
                )
    lines.append("")
    lines += [f"- {name}: `{signature}`" for name, signature in signatures.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of nmt-train")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--test-sets",
        help="comma-separated test splits instead of each run's data.test_sets, "
        "e.g. test_2016_flickr,test_2017_flickr",
    )
    args = parser.parse_args()
    test_sets = args.test_sets.split(",") if args.test_sets else None
    all_figures = [run_figures(run, test_sets) for run in args.runs]
    for f in all_figures:
        print(
            f"{f['run']}: {f['direction']}, {f['updates']:,} updates, {f['epochs']} full epochs, "
            f"{f['parameters']:,} parameters, {f['cpu']}, {f['threads']} threads"
            + (f", decoded on {f['gpu']}" if f["gpu"] else "")
        )
    print(markdown(all_figures))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(all_figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
