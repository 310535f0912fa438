"""nmt-evaluate's ``baseline=``: the same test sets scored for a baseline, and the paired tests.

The baseline is a checkpoint (decoded here with the same search options as the system) or a
file of hypotheses for a single test set. The tests are sacreBLEU's (``metrics.paired_comparison``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path

from nmt.data.corpus import DataError, ParallelSplit, read_lines
from nmt.inference.decoding import load_translator, search_settings
from nmt.inference.scoring import TestSetReport, translate_split
from nmt.metrics import Comparison, paired_comparison
from nmt.schemas import EvaluateConfig


def baseline_hypotheses(
    cfg: EvaluateConfig, splits: list[ParallelSplit], decode_given: Collection[str] | None
) -> list[list[str]]:
    """The baseline's translations of every split, in order."""
    location = Path(cfg.baseline)
    if location.is_dir() or location.suffix == ".pt":
        baseline = load_translator(cfg.baseline, cfg.decode.device)
        decode = search_settings(baseline, cfg.decode, decode_given)
        return [translate_split(baseline, split, decode, cfg.max_tokens) for split in splits]
    if not location.is_file():
        raise DataError(f"baseline={cfg.baseline} is neither a checkpoint nor a file")
    if len(splits) != 1:
        names = ", ".join(split.name for split in splits)
        raise DataError(
            f"baseline={cfg.baseline} holds the hypotheses of one test set, but {len(splits)} "
            f"are scored ({names}): choose one with test_sets=[name]"
        )
    lines = read_lines(location)
    if len(lines) != len(splits[0]):
        raise DataError(
            f"baseline={cfg.baseline} has {len(lines)} lines, test set {splits[0].name} has "
            f"{len(splits[0])} sentences"
        )
    return [lines]


def compare(
    reports: list[TestSetReport], splits: list[ParallelSplit], baselines: list[list[str]]
) -> list[list[Comparison]]:
    return [
        paired_comparison(report.hypotheses, baseline, split.tgt)
        for report, split, baseline in zip(reports, splits, baselines, strict=True)
    ]


def comparison_table(
    reports: list[TestSetReport], comparisons: list[list[Comparison]], baseline: str
) -> str:
    lines = [
        f"against baseline={baseline} (sacreBLEU paired bootstrap, 95 % intervals of each "
        "system's mean, and approximate randomization)",
        f"{'test set':<22}{'metric':<8}{'baseline':>16}{'system':>16}{'diff':>9}"
        f"{'p (bs)':>9}{'p (ar)':>9}",
    ]
    for report, rows in zip(reports, comparisons, strict=True):
        for c in rows:
            lines.append(
                f"{report.name:<22}{c.name:<8}"
                f"{f'{c.baseline:.2f} ± {c.baseline_ci:.2f}':>16}"
                f"{f'{c.system:.2f} ± {c.system_ci:.2f}':>16}"
                f"{c.difference:>+9.2f}{c.p_bootstrap:>9.4f}{c.p_randomization:>9.4f}"
            )
    return "\n".join(lines)


def comparison_records(rows: list[Comparison]) -> list[dict]:
    return [asdict(c) | {"difference": c.difference} for c in rows]
