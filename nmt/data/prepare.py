"""From a data config to tokenized splits: load, clean, build vocabularies, encode, report.

Shared by ``nmt-prepare`` (which only reports) and training (which goes on to batch), so the
statistics a user reads are those of the data the model is trained on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nmt.config import DataConfig
from nmt.data.batching import EncodedSplit, encode_split
from nmt.data.corpus import CleaningReport, DataError, ParallelSplit, clean, load_split
from nmt.data.tokenizer import Vocabularies, build_vocabularies


@dataclass
class PreparedCorpus:
    """Everything training needs from the data side."""

    vocabs: Vocabularies
    raw: dict[str, ParallelSplit]  # cleaned text, by split name
    encoded: dict[str, EncodedSplit]
    cleaning: dict[str, CleaningReport] = field(default_factory=dict)


def prepare(
    cfg: DataConfig,
    splits: list[str],
    log: Callable[[str], None] = print,
    vocabs: Vocabularies | None = None,
) -> PreparedCorpus:
    """Load ``train`` plus ``splits``, clean them, build or load vocabularies, and encode.

    ``vocabs`` (from a checkpoint being resumed) are used as they are instead of the cache.

    The training split gets every filter; other splits only lose empty pairs, so test sets
    stay comparable with published results.
    """
    started = time.perf_counter()
    try:
        Path(cfg.cache_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        message = f"data.cache_dir={cfg.cache_dir}: cannot create it ({error.strerror})"
        raise DataError(message) from None
    raw, cleaning = {}, {}
    for name in ["train"] + [s for s in splits if s != "train"]:
        pairs = load_split(cfg, name)
        if name == "train":
            pairs, report = clean(pairs, cfg.min_len, cfg.max_len, cfg.max_len_ratio)
        else:
            pairs, report = clean(pairs)
        if report.kept == 0:
            raise ValueError(
                f"split {name!r} from {pairs.origin} has no usable sentence pair left "
                "after cleaning"
            )
        raw[name], cleaning[name] = pairs, report
        log(f"loaded {name}: {report.kept:,} pairs from {pairs.origin}" + _dropped(report))
    if vocabs is None:
        vocabs, vocab_dir, cached = build_vocabularies(raw["train"], cfg)
    else:
        vocab_dir, cached = "<checkpoint>", True
    sizes = f"joint {len(vocabs.src)}" if vocabs.joint else f"{len(vocabs.src)}/{len(vocabs.tgt)}"
    log(
        f"vocabulary: {'reused' if cached else 'trained'} {cfg.spm_type} {sizes}"
        f" pieces in {vocab_dir}"
    )
    encoded = {name: encode_split(pairs, vocabs) for name, pairs in raw.items()}
    log(
        f"tokenized {sum(len(e) for e in encoded.values()):,} pairs "
        f"({time.perf_counter() - started:.1f} s in all)"
    )
    _drop_long_training_pairs(raw, encoded, cleaning["train"], cfg.max_tokens, log)
    for name in raw.keys() - {"train"}:
        if long := _longer_than(encoded[name], cfg.max_tokens):
            log(
                f"{name}: {len(long):,} pairs longer than data.max_tokens={cfg.max_tokens} "
                "pieces, kept whole (what is scored is never cut)"
            )
    return PreparedCorpus(vocabs, raw, encoded, cleaning)


def _longer_than(split: EncodedSplit, max_tokens: int) -> list[int]:
    return [
        i for i, (s, t) in enumerate(zip(split.src, split.tgt)) if max(len(s), len(t)) > max_tokens
    ]


def _drop_long_training_pairs(
    raw: dict, encoded: dict, report: CleaningReport, max_tokens: int, log: Callable[[str], None]
) -> None:
    """Leave training pairs longer than ``max_tokens`` pieces out: cut, a target would still end
    with EOS and teach the model to stop early; it would also cost the longest batches."""
    long = set(_longer_than(encoded["train"], max_tokens))
    if not long:
        return
    keep = [i for i in range(len(encoded["train"])) if i not in long]
    if not keep:
        raise ValueError(f"every training pair is longer than data.max_tokens={max_tokens} pieces")
    raw["train"], encoded["train"] = raw["train"].subset(keep), encoded["train"].subset(keep)
    why = f"longer than data.max_tokens={max_tokens} pieces"
    report.dropped[why] = len(long)
    report.kept = len(keep)
    log(f"train: dropped {len(long):,} pairs {why}")


def _dropped(report: CleaningReport) -> str:
    if not report.dropped:
        return ""
    return " (dropped " + ", ".join(f"{n:,} {why}" for why, n in report.dropped.items()) + ")"


def statistics_table(corpus: PreparedCorpus) -> str:
    """A plain-text table of per-split sizes, lengths and unknown-piece rates."""
    header = (
        f"{'split':<20}{'pairs':>9}{'dropped':>9}{'src words':>11}{'tgt words':>11}"
        f"{'src pieces':>12}{'tgt pieces':>12}{'max src':>9}{'max tgt':>9}{'unk %':>7}"
    )
    rows = [header, "-" * len(header)]
    for name, enc in corpus.encoded.items():
        raw = corpus.raw[name]
        src_pieces, tgt_pieces = sum(map(len, enc.src)), sum(map(len, enc.tgt))
        unknown = sum(s.count(1) for s in enc.src) + sum(t.count(1) for t in enc.tgt)
        rows.append(
            f"{name:<20}{len(enc):>9,}{sum(corpus.cleaning[name].dropped.values()):>9,}"
            f"{sum(len(s.split()) for s in raw.src) / len(enc):>11.2f}"
            f"{sum(len(t.split()) for t in raw.tgt) / len(enc):>11.2f}"
            f"{src_pieces / len(enc):>12.2f}{tgt_pieces / len(enc):>12.2f}"
            f"{max(map(len, enc.src)):>9}{max(map(len, enc.tgt)):>9}"
            f"{100 * unknown / max(1, src_pieces + tgt_pieces):>7.2f}"
        )
    rows.append(
        "(words: whitespace-separated, per sentence; pieces: SentencePiece, per sentence, "
        "without EOS)"
    )
    return "\n".join(rows)
