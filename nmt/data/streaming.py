"""The training split, chunk by chunk: corpora of millions of pairs are never held as Python
strings. Local files are read a block of lines at a time, Hugging Face datasets in Arrow
batches.

``train_digest`` names the split's content (file bytes, or the dataset's fingerprint) cheaply,
so a cache built from it is reused without reading the corpus again; ``train_sample`` draws the
pairs a vocabulary is trained on without holding the rest.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from itertools import zip_longest
from pathlib import Path

import numpy as np

from nmt.config import DataConfig
from nmt.data.corpus import (
    MULTI30K_HUB_ID,
    MULTI30K_HUB_SPLITS,
    DataError,
    ParallelSplit,
    byte_blocks,
    find_split_files,
    generated_root,
    iter_lines,
    line_blocks,
    numbered_lines,
    unequal_files,
)
from nmt.data.hub import hub_pairs, hub_rows

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
        digest.update(f"{path.name} {_scan(path)[0]}".encode())
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
    chunks = _chunked(_pairs_of(paths), size) if len(paths) == 1 else _zipped_blocks(paths, size)
    for src, tgt in chunks:
        yield ParallelSplit("train", src, tgt, origin=origin)


def _chunked(pairs: Iterator[tuple[str, str]], size: int) -> Iterator[tuple[list[str], list[str]]]:
    src, tgt = [], []
    for source, target in pairs:
        src.append(source)
        tgt.append(target)
        if len(src) == size:
            yield src, tgt
            src, tgt = [], []
    if src:
        yield src, tgt


def _zipped_blocks(paths: list[Path], size: int) -> Iterator[tuple[list[str], list[str]]]:
    """Two parallel files as chunks of ``size`` line pairs, read a block at a time (not line by
    line); files of different lengths are an error naming both, with their line counts."""
    blocks = [line_blocks(path) for path in paths]
    buffers: list[list[str]] = [[], []]
    read = 0  # pairs yielded so far
    while True:
        for side in (0, 1):
            while len(buffers[side]) < size and (block := next(blocks[side], None)) is not None:
                buffers[side] += block
        count = min(size, *map(len, buffers))
        if count < size and len(buffers[0]) != len(buffers[1]):  # one file ended early
            rests = [len(buffer) + sum(map(len, rest)) for buffer, rest in zip(buffers, blocks)]
            raise unequal_files(paths, [read + rest for rest in rests])
        if not count:
            return
        yield buffers[0][:count], buffers[1][:count]
        buffers, read = [buffers[0][count:], buffers[1][count:]], read + count


def _pairs_of(paths: list[Path], only: np.ndarray | None = None) -> Iterator[tuple[str, str]]:
    """The pairs of two parallel files or a TSV, in order; ``only``: just these 0-based line
    numbers, sorted."""
    if len(paths) == 1:
        for number, line in numbered_lines(paths[0], only):
            columns = line.split("\t")
            if len(columns) != 2:
                raise DataError(
                    f"{paths[0]}:{number}: expected 2 tab-separated columns, found {len(columns)}"
                )
            yield columns[0], columns[1]
        return
    src_lines, tgt_lines = iter_lines(paths[0], only), iter_lines(paths[1], only)
    for number, (source, target) in enumerate(zip_longest(src_lines, tgt_lines), start=1):
        if source is None or target is None:
            rest = 1 + sum(1 for _ in (src_lines if target is None else tgt_lines))
            src_count = number - 1 + (rest if target is None else 0)
            tgt_count = number - 1 + (rest if source is None else 0)
            raise unequal_files(paths, [src_count, tgt_count])
        yield source, target


def train_sample(cfg: DataConfig, size: int) -> ParallelSplit:
    """``size`` training pairs drawn uniformly without replacement (seeded), uncleaned, in
    corpus order; the whole split when it is no larger."""
    rng = np.random.default_rng(0)
    paths = _train_files(cfg)
    if paths is None:
        name, rows = _hub_rows(cfg)
        if len(rows) > size:
            rows = rows.select(np.sort(rng.choice(len(rows), size, replace=False)).tolist())
        return hub_pairs(rows[:], "train", cfg.src, cfg.tgt, origin=name)
    counts = [_scan(path)[1] for path in paths]
    if len(counts) == 2 and counts[0] != counts[1]:
        raise unequal_files(paths, counts)
    if counts[0] <= size:
        pairs = list(_pairs_of(paths))
    else:
        chosen = np.sort(rng.choice(counts[0], size, replace=False))
        pairs = list(_pairs_of(paths, chosen))
    origin = " + ".join(map(str, paths))
    return ParallelSplit("train", [s for s, _ in pairs], [t for _, t in pairs], origin=origin)


def _scan(path: Path) -> tuple[str, int]:
    """A file's SHA-256 and line count (of its text, for ``.gz``; a last line without a newline
    hashes as if it had one), read once per process: the digest that keys the caches and the
    count a sample is drawn from come from one pass."""
    stat = path.stat()
    return _scan_file(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _scan_file(path: Path, size: int, mtime_ns: int) -> tuple[str, int]:
    digest, count = hashlib.sha256(), 0
    for block in byte_blocks(path, 1 << 20):
        digest.update(block)
        count += int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")))
    return digest.hexdigest(), count
