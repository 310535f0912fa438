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
from nmt.commands.compare import baseline_hypotheses, compare, comparison_records, comparison_table
from nmt.config import DataConfig
from nmt.data.corpus import DataError, ParallelSplit, load_split, read_lines
from nmt.files import write_text
from nmt.inference.align import read_pharaoh
from nmt.inference.decoding import Translator, load_translator, search_settings
from nmt.inference.scoring import GoldAlignments, TestSetReport, score_split, split_gold
from nmt.provenance import sha256_bytes, sha256_file, sha256_lines, versions
from nmt.schemas import EvaluateConfig


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
    splits = test_sets(cfg, translator.data)
    baselines = baseline_hypotheses(cfg, splits, decode_given) if cfg.baseline else None
    reports = [evaluate_split(cfg, translator, split) for split in splits]
    print(report_table(reports, cfg))
    records = [_split_record(r, s) for r, s in zip(reports, splits)]
    if baselines is not None:
        comparisons = compare(reports, splits, baselines)
        print(comparison_table(reports, comparisons, cfg.baseline))
        for record, rows in zip(records, comparisons):
            record["comparison"] = comparison_records(rows)
    path = Path(cfg.report) if cfg.report else _run_dir_of(translator.path) / "evaluation.json"
    report = {
        "checkpoint": translator.path,
        "decode": asdict(cfg.decode),
        "test_sets": records,
        "provenance": _provenance(cfg, translator),
    }
    try:
        write_text(path, json.dumps(report, indent=2))
    except OSError as error:
        raise DataError(f"report={path}: cannot write there ({error.strerror})") from None
    print(f"report: {path}")
    return reports


def _split_record(report: TestSetReport, split: ParallelSplit) -> dict:
    """A test set's figures, and what was translated and scored (hashes of the lines as read)."""
    record = {key: value for key, value in asdict(report).items() if key != "hypotheses"}
    return record | {
        "origin": split.origin,
        "source_sha256": sha256_lines(split.src),
        "reference_sha256": sha256_lines(split.tgt),
    }


def _provenance(cfg: EvaluateConfig, translator: Translator) -> dict:
    """Enough to tell later whether two reports are comparable (``nmt.provenance``)."""
    vocabs = translator.vocabs
    return {
        "checkpoint_sha256": sha256_file(translator.path),
        "checkpoints": [{"path": path, "sha256": sha256_file(path)} for path in translator.paths],
        "sentencepiece_sha256": {
            "src": sha256_bytes(vocabs.src.model_proto),
            "tgt": sha256_bytes(vocabs.tgt.model_proto),
        },
        "checkpoint_config": translator.config,
        "evaluate_config": asdict(cfg),
        "versions": versions(),
    }


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
