"""From a data config to tokenized splits: load, clean, build vocabularies, encode, report.

Shared by ``nmt-prepare`` (which only reports) and training (which goes on to batch), so the
statistics a user reads are those of the data the model is trained on.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nmt.config import UNK_ID, DataConfig
from nmt.data.batching import EncodedSplit, encode_split
from nmt.data.binarized import (
    FORMAT_VERSION,
    MappedSplit,
    SplitWriter,
    encode_pairs,
    open_split,
    start_encoder,
)
from nmt.data.corpus import CleaningReport, DataError, ParallelSplit, clean, load_split
from nmt.data.shortlist import Shortlist, cached_shortlist
from nmt.data.streaming import train_chunks, train_digest, train_sample
from nmt.data.tokenizer import Vocabularies, build_vocabularies, cached_vocabularies


@dataclass
class PreparedCorpus:
    """Everything training needs from the data side."""

    vocabs: Vocabularies
    raw: dict[str, ParallelSplit]  # cleaned text, by split name
    encoded: dict[str, EncodedSplit | MappedSplit]  # the training split is mapped
    cleaning: dict[str, CleaningReport] = field(default_factory=dict)
    shortlist: Shortlist | None = None  # the training split's (``decode.shortlist``)


def prepare(
    cfg: DataConfig,
    splits: list[str],
    log: Callable[[str], None] = print,
    vocabs: Vocabularies | None = None,
) -> PreparedCorpus:
    """Prepare ``train`` (binarized, memory-mapped) plus ``splits`` (in memory): clean, build or
    load vocabularies, encode.

    ``vocabs`` (from a checkpoint being resumed) are used as they are instead of the cache.

    The training split gets every filter and loses pairs longer than ``data.max_tokens``
    pieces; other splits only lose empty pairs, so test sets stay comparable with published
    results.
    """
    started = time.perf_counter()
    try:
        Path(cfg.cache_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        message = f"data.cache_dir={cfg.cache_dir}: cannot create it ({error.strerror})"
        raise DataError(message) from None
    digest = train_digest(cfg)
    if vocabs is None:
        vocabs, vocab_dir, cached = _vocabularies(cfg, digest, log)
    else:
        vocab_dir, cached = "<checkpoint>", True
    sizes = f"joint {len(vocabs.src)}" if vocabs.joint else f"{len(vocabs.src)}/{len(vocabs.tgt)}"
    log(
        f"vocabulary: {'reused' if cached else 'trained'} {cfg.spm_type} {sizes}"
        f" pieces in {vocab_dir} ({time.perf_counter() - started:.1f} s after start)"
    )
    train, report = _binarized_train(cfg, vocabs, digest, log)
    raw, cleaning, encoded = {}, {"train": report}, {"train": train}
    for name in [s for s in splits if s != "train"]:
        pairs, report = clean(load_split(cfg, name))
        if report.kept == 0:
            raise ValueError(
                f"split {name!r} from {pairs.origin} has no usable sentence pair left "
                "after cleaning"
            )
        raw[name], cleaning[name], encoded[name] = pairs, report, encode_split(pairs, vocabs)
        log(f"loaded {name}: {report.kept:,} pairs from {pairs.origin}" + _dropped(report))
        if long := _longer_than(encoded[name], cfg.max_tokens):
            log(
                f"{name}: {len(long):,} pairs longer than data.max_tokens={cfg.max_tokens} "
                "pieces, kept whole (what is scored is never cut)"
            )
    sizes = (len(vocabs.src), len(vocabs.tgt))
    shortlist = cached_shortlist(train.directory, train.src, train.tgt, *sizes)
    log(f"data ready in {time.perf_counter() - started:.1f} s")
    return PreparedCorpus(vocabs, raw, encoded, cleaning, shortlist)


def _key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _cleaning(cfg: DataConfig) -> dict:
    return {"min_len": cfg.min_len, "max_len": cfg.max_len, "ratio": cfg.max_len_ratio}


def _vocabularies(
    cfg: DataConfig, digest: str, log: Callable[[str], None]
) -> tuple[Vocabularies, Path, bool]:
    """The cached vocabularies of this corpus and settings, or ones trained on a sample."""
    settings = {"type": cfg.spm_type, "size": cfg.vocab_size, "joint": cfg.joint_vocab}
    settings |= {"coverage": cfg.character_coverage, "src": cfg.src, "tgt": cfg.tgt}
    settings |= {"sample": cfg.spm_sample}
    key = _key({"corpus": digest, "cleaning": _cleaning(cfg), **settings})[:16]
    if found := cached_vocabularies(cfg, key):
        return *found, True
    return build_vocabularies(_sample(cfg, log), cfg, key)


def _sample(cfg: DataConfig, log: Callable[[str], None]) -> ParallelSplit:
    """The cleaned pairs of a uniform sample of ``data.spm_sample`` training pairs (all of a
    smaller split), drawn without decoding the rest of the corpus."""
    started = time.perf_counter()
    sample, _ = clean(
        train_sample(cfg, cfg.spm_sample), cfg.min_len, cfg.max_len, cfg.max_len_ratio
    )
    log(
        f"vocabulary: training on {len(sample):,} sampled pairs (data.spm_sample="
        f"{cfg.spm_sample:,}; drawn in {time.perf_counter() - started:.1f} s)"
    )
    return sample


def _binarized_train(
    cfg: DataConfig, vocabs: Vocabularies, digest: str, log: Callable[[str], None]
) -> tuple[MappedSplit, CleaningReport]:
    """The training split from its binarized cache, built first when missing or stale."""
    protos = hashlib.sha256(vocabs.src.model_proto + vocabs.tgt.model_proto).hexdigest()
    key = _key(
        {"corpus": digest, "vocabularies": protos, "cleaning": _cleaning(cfg)}
        | {"max_tokens": cfg.max_tokens, "format": FORMAT_VERSION}
    )
    directory = Path(cfg.cache_dir) / "binarized" / key[:16]
    split, verb, started = open_split(directory, key), "reused", time.perf_counter()
    if split is None:
        split = _binarize(cfg, vocabs, directory, key)
        verb = f"built in {time.perf_counter() - started:.1f} s"
    report = CleaningReport(len(split), dict(split.manifest["dropped"]))
    if report.kept == 0:
        raise ValueError(
            f"split 'train' from {split.manifest['origin']} has no usable sentence pair left "
            "after cleaning"
        )
    log(
        f"loaded train: {report.kept:,} pairs from {split.manifest['origin']}"
        + _dropped(report)
        + f"; binarized cache {verb}: {directory}"
    )
    return split, report


def _binarize(cfg: DataConfig, vocabs: Vocabularies, directory: Path, key: str) -> MappedSplit:
    """Stream, clean and encode the training split into a new cache directory.

    This process reads and cleans; chunks after the first are encoded by one worker process
    per core, so reading overlaps with encoding (a corpus of one chunk stays in-process)."""
    writer = SplitWriter(directory, "train", max(len(vocabs.src), len(vocabs.tgt)))
    state = {"dropped": {}, "words": [0, 0], "origin": ""}
    too_long = f"longer than data.max_tokens={cfg.max_tokens} pieces"

    def write(encoded: tuple) -> None:
        src, tgt, long, long_words = encoded
        writer.add(src, tgt)
        if long:
            state["dropped"][too_long] = state["dropped"].get(too_long, 0) + long
            state["words"] = [have - gone for have, gone in zip(state["words"], long_words)]

    workers, pool, pending, first = os.cpu_count() or 1, None, deque(), None
    try:
        with tqdm(desc="binarizing train", unit=" pairs", unit_scale=True, disable=None) as bar:
            for chunk in train_chunks(cfg):
                state["origin"] = chunk.origin
                cleaned, report = clean(chunk, cfg.min_len, cfg.max_len, cfg.max_len_ratio)
                for why, count in report.dropped.items():
                    state["dropped"][why] = state["dropped"].get(why, 0) + count
                state["words"] = [a + b for a, b in zip(state["words"], report.words)]
                bar.update(len(chunk))
                job = (cleaned.src, cleaned.tgt, cfg.max_tokens, writer.dtype.name)
                if first is None:  # kept back: a small corpus' only chunk is encoded here
                    first = job
                    continue
                if pool is None:
                    pool = _encoders(vocabs, workers)
                    pending.append(pool.submit(encode_pairs, *first))
                pending.append(pool.submit(encode_pairs, *job))
                while len(pending) > 2 * workers:
                    write(pending.popleft().result())
            if pool is None and first is not None:
                write(encode_pairs(*first, tokenizers=(vocabs.src, vocabs.tgt), threads=workers))
            while pending:
                write(pending.popleft().result())
    except BaseException:
        writer.abandon()
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return writer.finish({"key": key, **state})


def _encoders(vocabs: Vocabularies, workers: int) -> ProcessPoolExecutor:
    """Worker processes with the vocabularies loaded (spawned: no forked torch state)."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_encoder,
        initargs=(vocabs.src.model_proto, vocabs.tgt.model_proto),
    )


def _longer_than(split: EncodedSplit, max_tokens: int) -> list[int]:
    return [
        i for i, (s, t) in enumerate(zip(split.src, split.tgt)) if max(len(s), len(t)) > max_tokens
    ]


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
        pairs = len(enc)
        if isinstance(enc, MappedSplit):  # counted while binarizing, or read off the arrays
            src_words, tgt_words = enc.manifest["words"]
            ids = [enc.src.ids, enc.tgt.ids]
            unknown = sum(int(np.count_nonzero(side == UNK_ID)) for side in ids)
        else:
            src_words = sum(len(s.split()) for s in corpus.raw[name].src)
            tgt_words = sum(len(t.split()) for t in corpus.raw[name].tgt)
            unknown = sum(s.count(UNK_ID) for s in enc.src) + sum(t.count(UNK_ID) for t in enc.tgt)
        src_lens, tgt_lens = enc.lengths()
        src_pieces, tgt_pieces = int(src_lens.sum()), int(tgt_lens.sum())
        rows.append(
            f"{name:<20}{pairs:>9,}{sum(corpus.cleaning[name].dropped.values()):>9,}"
            f"{src_words / pairs:>11.2f}{tgt_words / pairs:>11.2f}"
            f"{src_pieces / pairs:>12.2f}{tgt_pieces / pairs:>12.2f}"
            f"{int(src_lens.max()):>9}{int(tgt_lens.max()):>9}"
            f"{100 * unknown / max(1, src_pieces + tgt_pieces):>7.2f}"
        )
    rows.append(
        "(words: whitespace-separated, per sentence; pieces: SentencePiece, per sentence, "
        "without EOS)"
    )
    return "\n".join(rows)
