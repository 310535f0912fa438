"""nmt-evaluate: score a checkpoint on test sets, print the table, write the JSON report.

The command's part is choosing the test sets and gold alignments from its options and
presenting the figures; translating and scoring are ``nmt.inference.scoring``'s.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, replace
from pathlib import Path

from nmt.checkpoint import CHECKPOINT_DIR
from nmt.config import DataConfig, EvaluateConfig
from nmt.data.corpus import DataError, ParallelSplit, load_split, read_lines
from nmt.files import write_text
from nmt.inference.align import read_pharaoh
from nmt.inference.decoding import Translator, load_translator, search_settings
from nmt.inference.scoring import GoldAlignments, TestSetReport, score_split, split_gold


def test_sets(cfg: EvaluateConfig, data: DataConfig) -> list[ParallelSplit]:
    """The test sets to score: ``input``/``reference`` files, or the checkpoint's corpus' test
    sets (``data``), with ``test_sets`` and ``data_root`` taking the place of its own."""
    if cfg.input or cfg.reference:
        if not (cfg.input and cfg.reference):
            raise DataError("nmt-evaluate needs both input=<source file> and reference=<file>")
        for option in ("input", "reference"):
            if not Path(getattr(cfg, option)).is_file():
                raise DataError(f"{option}={getattr(cfg, option)} is not a file")
        sources, references = read_lines(Path(cfg.input)), read_lines(Path(cfg.reference))
        if len(sources) != len(references):
            raise DataError(
                f"input={cfg.input} has {len(sources)} lines but reference="
                f"{cfg.reference} has {len(references)}"
            )
        return [ParallelSplit(Path(cfg.input).name, sources, references, cfg.input)]
    data = replace(data, root=cfg.data_root or data.root)
    return [load_split(data, name) for name in cfg.test_sets or data.test_sets]


def gold_alignments(cfg: EvaluateConfig, split: ParallelSplit) -> GoldAlignments | None:
    """Gold links from ``alignments=<file>``, else the split's own, when there are any."""
    reverse = cfg.alignments_order == "tgt-src"
    if not cfg.alignments:
        return split_gold(split, cfg.alignments_one_based, reverse)
    if not Path(cfg.alignments).is_file():
        raise DataError(f"alignments={cfg.alignments} is not a file")
    pairs = read_pharaoh(cfg.alignments, one_based=cfg.alignments_one_based)
    return GoldAlignments.from_pairs(pairs, cfg.alignments, reverse)


def evaluate_split(
    cfg: EvaluateConfig, translator: Translator, split: ParallelSplit
) -> TestSetReport:
    return score_split(
        translator,
        split,
        cfg.decode,
        cfg.max_tokens,
        gold_alignments(cfg, split),
        (cfg.align_method, cfg.align_threshold),
        cfg.tok_bleu,
    )


def evaluate(
    cfg: EvaluateConfig, decode_given: Collection[str] | None = None
) -> list[TestSetReport]:
    """The nmt-evaluate command: print a table, write a JSON report. Search options not in
    ``decode_given`` (the ``decode.*`` set on the command line; None: all) are the checkpoint's."""
    translator = load_translator(cfg.checkpoint, cfg.decode.device)
    cfg = replace(cfg, decode=search_settings(translator, cfg.decode, decode_given))
    reports = [evaluate_split(cfg, translator, split) for split in test_sets(cfg, translator.data)]
    print(report_table(reports, cfg))
    path = Path(cfg.report) if cfg.report else _run_dir_of(translator.path) / "evaluation.json"
    report = {
        "checkpoint": translator.path,
        "decode": asdict(cfg.decode),
        "test_sets": [asdict(r) for r in reports],
    }
    try:
        write_text(path, json.dumps(report, indent=2))
    except OSError as error:
        raise DataError(f"report={path}: cannot write there ({error.strerror})") from None
    print(f"report: {path}")
    return reports


def _run_dir_of(checkpoint: str) -> Path:
    """``run/checkpoints/best.pt`` -> ``run``; a loose file -> its directory."""
    directory = Path(checkpoint).parent
    return directory.parent if directory.name == CHECKPOINT_DIR else directory


def report_table(reports: list[TestSetReport], cfg: EvaluateConfig) -> str:
    search = (
        "greedy"
        if cfg.decode.beam_size == 1
        else (f"beam {cfg.decode.beam_size}, alpha {cfg.decode.alpha:g}, beta {cfg.decode.beta:g}")
    )
    tok = cfg.tok_bleu
    lines = [
        f"{'test set':<22}{'sents':>7}{'BLEU':>8}{'chrF':>8}{'TER':>8}"
        + (f"{'lc-tok':>8}" if tok else "")
        + f"{'AER':>8}{'sent/s':>9}   ({search})"
    ]
    for r in reports:
        value = {s.name: s.value for s in r.scores}
        aer = f"{100 * r.alignment.aer:>8.2f}" if r.alignment else f"{'-':>8}"
        lines.append(
            f"{r.name:<22}{r.sentences:>7}{value['BLEU']:>8.2f}{value['chrF']:>8.2f}"
            f"{value['TER']:>8.2f}"
            + (f"{value['BLEU-lc-tok']:>8.2f}" if tok else "")
            + f"{aer}{r.sentences / max(r.seconds, 1e-9):>9.1f}"
        )
    signatures = {s.name: s.signature for r in reports for s in r.scores}
    lines += [f"{name} signature: {signature}" for name, signature in signatures.items()]
    if any(r.alignment for r in reports):
        lines.append(
            "AER in %, from the attention of force-decoding the reference "
            f"({cfg.align_method}); precision/recall in the JSON report"
        )
    return "\n".join(lines)
