"""Which attention works best: Hydra multirun sweeps over the scorers, the normalizer and the
decoder order, each run evaluated (beam 5 BLEU, and AER where the corpus has gold links).

    python scripts/attention_sweep.py                         # generated corpus, to convergence
    python scripts/attention_sweep.py --data multi30k --budget 5m

Writes ``<out>/attention_<data>.{md,json,png}``: a table, the raw figures, and one figure with
BLEU and AER per variant. Runs go under ``multirun/attention_<data>/`` (ignored by git); a run
that already finished there is evaluated again, not retrained, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SCORERS = "bahdanau,dot,general,concat,scaled_dot,cosine,multihead"
# (label, overrides) of the three multiruns: every scorer with softmax and the Luong order, then
# sparsemax instead of softmax, and the Bahdanau order instead of Luong's, for Bahdanau scoring.
SWEEPS = {
    "scorer": [f"model.attention={SCORERS}"],
    "sparsemax": ["model.attention=bahdanau", "model.normalizer=sparsemax"],
    "bahdanau_order": ["model.attention=bahdanau", "model.decoder=bahdanau"],
}
SETTINGS = {
    # the generated corpus: a small model trained until validation BLEU stops moving
    "generated": [
        "data=generated",
        "model.emb_dim=64",
        "model.enc_hidden=64",
        "model.dec_hidden=128",
        "model.dropout=0.1",
        "data.batch_tokens=3000",
        "train.lr=3e-3",
        "train.schedule=linear",
        "train.max_steps=2000",
        "train.val_every=1000",
        "train.val_sentences=200",
    ],
    # Multi30k de->en: the 15-minute recipe, an equal wall-clock budget per run (each multirun
    # job's budget counts from its own start). The peers' recipe learns too slowly for this:
    # after 3 minutes it had BLEU 1.
    "multi30k": [
        "experiment=m30k_deen_15m",
        "data.root=../shared/data/multi30k/raw",  # the developers' local copy
        "train.val_every=1000000",
        "train.val_sentences=0",
    ],
}


def run_sweeps(data: str, budget: str | None, root: Path, extra: list[str]) -> list[Path]:
    """Launch the multiruns that are not done yet; returns every finished run directory."""
    settings = SETTINGS[data] + ([f"train.max_time={budget}"] if budget else [])
    runs = []
    for name, overrides in SWEEPS.items():
        sweep_dir = root / name
        done = sorted(p.parent.parent for p in sweep_dir.glob("*/checkpoints/last.pt"))
        if not done:
            command = [
                "nmt-train",
                "-m",
                *settings,
                *overrides,
                *extra,
                "train.progress=false",
                f"hydra.sweep.dir={sweep_dir}",
                "hydra.sweep.subdir=${hydra.job.override_dirname}",
                "hydra.job.config.override_dirname.exclude_keys="
                "[data,experiment,train.max_time,train.progress,train.val_every,train.val_sentences,"
                "train.max_steps,train.lr,train.schedule,data.batch_tokens,model.emb_dim,"
                "model.enc_hidden,model.dec_hidden,model.dropout]",
            ]
            print("$ " + " ".join(command), flush=True)
            subprocess.run(command, check=True)
            done = sorted(p.parent.parent for p in sweep_dir.glob("*/checkpoints/last.pt"))
        runs += done
    return runs


def evaluate_run(run_dir: Path) -> dict:
    """Beam-5 scores and AER of a run's best checkpoint on its corpus' test sets."""
    from omegaconf import OmegaConf

    from nmt.config import DecodeConfig
    from nmt.data.corpus import load_split
    from nmt.inference.decoding import load_translator
    from nmt.inference.scoring import score_split, split_gold

    model_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml").model
    started = time.perf_counter()
    translator = load_translator(str(run_dir), "auto")
    split = load_split(translator.data, translator.data.test_sets[0])
    report = score_split(
        translator, split, DecodeConfig(beam_size=5), translator.data.max_tokens, split_gold(split)
    )
    scores = {s.name: s.value for s in report.scores}
    return {
        "run": run_dir.name,
        "attention": model_cfg.attention,
        "normalizer": model_cfg.normalizer,
        "decoder": model_cfg.decoder,
        "test_set": report.name,
        "bleu": round(scores["BLEU"], 2),
        "chrf": round(scores["chrF"], 2),
        "aer": None if report.alignment is None else round(100 * report.alignment.aer, 2),
        "eval_s": round(time.perf_counter() - started, 1),
    }


def write_outputs(rows: list[dict], out: Path, data: str, header: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"attention_{data}"
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        header,
        "",
        "| scorer | normalizer | decoder order | BLEU (beam 5) | chrF | AER % |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        aer = "-" if r["aer"] is None else f"{r['aer']:.2f}"
        lines.append(
            f"| {r['attention']} | {r['normalizer']} | {r['decoder']} | {r['bleu']:.2f} "
            f"| {r['chrf']:.2f} | {aer} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        r["attention"]
        + ("\nsparsemax" if r["normalizer"] != "softmax" else "")
        + ("\nBahdanau order" if r["decoder"] == "bahdanau" else "")
        for r in rows
    ]
    has_aer = any(r["aer"] is not None for r in rows)
    fig, axes = plt.subplots(1, 2 if has_aer else 1, figsize=(12 if has_aer else 7, 4))
    axes = list(axes) if has_aer else [axes]
    axes[0].bar(range(len(rows)), [r["bleu"] for r in rows], color="tab:blue")
    axes[0].set_ylabel("BLEU, beam 5 (higher is better)")
    if has_aer:
        axes[1].bar(range(len(rows)), [r["aer"] or 0 for r in rows], color="tab:orange")
        axes[1].set_ylabel("AER % of attention (lower is better)")
    for ax in axes:
        ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=8)
    fig.suptitle(header.lstrip("# "), fontsize=10)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    print(f"wrote {stem}.md, .json and .png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(SETTINGS), default="generated")
    parser.add_argument("--budget", help="train.max_time per run, e.g. 5m (multi30k default 5m)")
    parser.add_argument("--out", default="docs", help="where the table, JSON and figure go")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    budget = args.budget or ("5m" if args.data == "multi30k" else None)
    root = Path("multirun") / f"attention_{args.data}"
    started = time.monotonic()
    runs = run_sweeps(args.data, budget, root, args.overrides)
    rows = [evaluate_run(run) for run in runs]
    header = f"# Attention variants on {args.data}" + (
        f", {budget} of training each" if budget else ", 2,000 updates each"
    )
    write_outputs(rows, Path(args.out), args.data, header)
    print(f"sweep and evaluation took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)
