"""The training split, chunk by chunk: corpora of millions of pairs are never held as Python
strings. Local files are read line by line, Hugging Face datasets in Arrow batches.

``train_digest`` names the split's content (file bytes, or the dataset's fingerprint) cheaply,
so a cache built from it is reused without reading the corpus again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from itertools import zip_longest
from pathlib import Path

from nmt.config import DataConfig
from nmt.data.corpus import (
    MULTI30K_HUB_ID,
    MULTI30K_HUB_SPLITS,
    DataError,
    ParallelSplit,
    find_split_files,
    generated_root,
    hub_pairs,
    hub_rows,
    iter_lines,
)

CHUNK_PAIRS = 100_000


def _train_files(cfg: DataConfig) -> list[Path] | None:
    """The training split's files (two parallel ones or a TSV), or None for a hub dataset."""
    if cfg.source == "generated":
        return find_split_files(generated_root(cfg), "train", cfg.src, cfg.tgt)[1]
    if cfg.source == "files" or (cfg.source == "multi30k" and cfg.root is not None):
        return find_split_files(Path(cfg.root), "train", cfg.src, cfg.tgt)[1]
    return None


def _hub_rows(cfg: DataConfig):
    if cfg.source == "multi30k":
        name = cfg.name or MULTI30K_HUB_ID
        return name, hub_rows(name, None, MULTI30K_HUB_SPLITS["train"], cfg.src, cfg.tgt)
    return cfg.name, hub_rows(cfg.name, cfg.subset, "train", cfg.src, cfg.tgt)


def train_digest(cfg: DataConfig) -> str:
    """A hash of the training split's source: its files' bytes (read at disk speed, not parsed),
    or a hub dataset's fingerprint, with the options that choose them."""
    chosen = {key: asdict(cfg)[key] for key in ("source", "src", "tgt", "name", "subset")}
    digest = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode())
    paths = _train_files(cfg)
    if paths is None:
        digest.update(str(getattr(_hub_rows(cfg)[1], "_fingerprint", "")).encode())
        return digest.hexdigest()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def train_chunks(cfg: DataConfig, size: int = CHUNK_PAIRS) -> Iterator[ParallelSplit]:
    """The training split in chunks of ``size`` pairs, uncleaned, in corpus order."""
    paths = _train_files(cfg)
    if paths is None:
        name, rows = _hub_rows(cfg)
        for columns in rows.iter(batch_size=size):
            yield hub_pairs(columns, "train", cfg.src, cfg.tgt, origin=name)
        return
    origin = " + ".join(map(str, paths))
    src, tgt = [], []
    for src_line, tgt_line in _pairs_of(paths):
        src.append(src_line)
        tgt.append(tgt_line)
        if len(src) == size:
            yield ParallelSplit("train", src, tgt, origin=origin)
            src, tgt = [], []
    if src:
        yield ParallelSplit("train", src, tgt, origin=origin)


def _pairs_of(paths: list[Path]) -> Iterator[tuple[str, str]]:
    if len(paths) == 1:
        for number, line in enumerate(iter_lines(paths[0]), start=1):
            columns = line.split("\t")
            if len(columns) != 2:
                raise DataError(
                    f"{paths[0]}:{number}: expected 2 tab-separated columns, found {len(columns)}"
                )
            yield columns[0], columns[1]
        return
    src_lines, tgt_lines = iter_lines(paths[0]), iter_lines(paths[1])
    for number, (source, target) in enumerate(zip_longest(src_lines, tgt_lines), start=1):
        if source is None or target is None:
            rest = 1 + sum(1 for _ in (src_lines if target is None else tgt_lines))
            src_count = number - 1 + (rest if target is None else 0)
            tgt_count = number - 1 + (rest if source is None else 0)
            raise DataError(
                f"parallel files differ in length: {paths[0]} has {src_count} lines, "
                f"{paths[1]} has {tgt_count}"
            )
        yield source, target
