"""The roots each command but nmt-train composes (nmt-train's is ``nmt.config.Config``), and
their registration with Hydra: one typed schema per ``configs/<command>.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nmt.config import (
    Config,
    DataConfig,
    DecodeConfig,
    check_choice,
    check_positive,
)


def check_checkpoint(value: Any) -> None:
    """``checkpoint=``: one path, or a list of paths (an ensemble)."""
    paths = value if isinstance(value, list) else [value]
    if value is not None and not all(isinstance(p, str) and p for p in paths):
        raise ValueError(f"checkpoint={value!r}: give a path, or a list [a.pt,b.pt,...]")


@dataclass
class PrepareConfig:
    """nmt-prepare's root: the corpus only."""

    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class TranslateConfig:
    """nmt-translate's root: a checkpoint, the search, and what to write."""

    checkpoint: Any = None  # run directory or .pt; [a.pt,b.pt,...]: an ensemble
    input: str | None = None  # file, or "-"/unset for stdin
    output: str | None = None  # file, or "-"/unset for stdout
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    max_tokens: int = 250  # source pieces kept per line; longer lines are cut, with a warning
    align_method: str = "argmax"  # argmax | threshold: attention -> word links
    align_threshold: float = 0.3
    write_alignments: str | None = None  # Pharaoh i-j links per output line
    write_nbest: str | None = None  # "index ||| hypothesis ||| score" lines
    write_jsonl: str | None = None  # tokens, attention and context per sentence
    write_heatmaps: str | None = None  # a directory for one figure per sentence
    heatmap_format: str = "png"  # png | svg | pdf
    attention_logdir: str | None = None  # a TensorBoard logdir: explore these sentences there

    def __post_init__(self) -> None:
        check_choice("align_method", self.align_method, ("argmax", "threshold"))
        check_choice("heatmap_format", self.heatmap_format, ("png", "svg", "pdf"))
        check_positive("max_tokens", self.max_tokens)
        check_checkpoint(self.checkpoint)


@dataclass
class EvaluateConfig:
    """nmt-evaluate's root: a checkpoint, the search, and what to score it on.

    By default the checkpoint's own corpus and test sets; ``test_sets`` and ``data_root`` change
    which splits and where a local copy lives; ``input`` + ``reference`` score two files instead.
    """

    checkpoint: Any = None  # run directory or .pt; [a.pt,b.pt,...]: an ensemble
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    test_sets: list[str] | None = None  # instead of the checkpoint's data.test_sets
    data_root: str | None = None  # instead of the checkpoint's data.root (a local copy)
    input: str | None = None  # a source file to score, with `reference`
    reference: str | None = None  # reference translations of `input`
    baseline: str | None = None  # a checkpoint, or one test set's hypotheses: significance
    alignments: str | None = None  # gold word alignments of the test set
    alignments_one_based: bool = False  # gold links count from 1, as in the classic sets
    alignments_order: str = "src-tgt"  # src-tgt | tgt-src: which side the gold links name first
    align_method: str = "argmax"  # argmax | threshold: attention -> word links
    align_threshold: float = 0.3
    max_tokens: int = 250  # source pieces translated per sentence (longer: cut, warned)
    report: str | None = None  # the JSON report's path (default: in the run dir)
    tok_bleu: bool = False  # also BLEU on lowercased Moses-tokenized text (sacremoses)

    def __post_init__(self) -> None:
        check_choice("align_method", self.align_method, ("argmax", "threshold"))
        check_choice("alignments_order", self.alignments_order, ("src-tgt", "tgt-src"))
        check_positive("max_tokens", self.max_tokens)
        check_checkpoint(self.checkpoint)


@dataclass
class AverageConfig:
    """nmt-average's root: which checkpoints to average, and where to write the result."""

    checkpoints: list[str] | None = None  # checkpoint files, averaged with equal weights
    run: str | None = None  # or a run directory: its newest `last` step_*.pt checkpoints
    last: int = 5
    output: str | None = None  # default: <run>/checkpoints/average.pt

    def __post_init__(self) -> None:
        check_positive("last", self.last)
        if (self.checkpoints is None) == (self.run is None):
            raise ValueError("give checkpoints=[a.pt,b.pt,...] or run=<run directory>, not both")


SCHEMAS = {
    "train_schema": Config,
    "prepare_schema": PrepareConfig,
    "translate_schema": TranslateConfig,
    "evaluate_schema": EvaluateConfig,
    "average_schema": AverageConfig,
}


def register_configs() -> None:
    """Register each command's root schema with Hydra's ConfigStore (``<command>_schema``)."""
    from hydra.core.config_store import ConfigStore

    for name, schema in SCHEMAS.items():
        ConfigStore.instance().store(name=name, node=schema)
