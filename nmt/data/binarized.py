"""A training split as flat token-id arrays on disk, memory-mapped: what corpora of millions of
pairs train from.

Per side, one array of every sentence's ids back to back (uint16 when the vocabulary fits, else
uint32) and one of offsets; nothing per sentence lives in Python. Every rank of a run maps the
same files, so the page cache holds one copy. A cache directory is complete or absent: it is
written under a temporary name and renamed into place with its manifest (pair counts, dropped
counts by reason, the key, the format version), so a killed writer leaves nothing a later run
trusts.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from nmt.data.tokenizer import Tokenizer
from nmt.files import fsync_directory

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIDES = ("src", "tgt")


class Ragged(Sequence):
    """Sentence i of a flat id array, as a list: ``ids[offsets[i]:offsets[i + 1]]``."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        self.ids, self.offsets = ids, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        return self.ids[self.offsets[i] : self.offsets[i + 1]].tolist()

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass
class MappedSplit:
    """A split read from memory-mapped arrays; used where an ``EncodedSplit`` is (batching and
    ``collate`` read ``src``/``tgt``/``lengths``)."""

    name: str
    src: Ragged
    tgt: Ragged
    manifest: dict = field(default_factory=dict)
    directory: Path | None = None  # where the arrays live

    def __len__(self) -> int:
        return len(self.src)

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        return self.src.lengths(), self.tgt.lengths()


def open_split(directory: Path, key: str) -> MappedSplit | None:
    """The cached split in ``directory``, or None when it is missing, incomplete or stale."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != FORMAT_VERSION or manifest.get("key") != key:
        return None
    sides = []
    for side in SIDES:
        dtype, tokens = np.dtype(manifest["dtype"]), manifest[f"{side}_tokens"]
        try:  # a file cut short or gone since the manifest was written
            ids = np.memmap(directory / f"{side}.ids", dtype=dtype, mode="r", shape=(tokens,))
            offsets = np.load(directory / f"{side}.offsets.npy", mmap_mode="r")
        except (OSError, ValueError):
            return None
        if len(offsets) != manifest["pairs"] + 1 or int(offsets[-1]) != tokens:
            return None
        sides.append(Ragged(ids, offsets))
    return MappedSplit(manifest["name"], *sides, manifest, directory)


def id_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32)


def flatten(sentences: Sequence[list[int]], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Sentences of ids as one flat array and their lengths."""
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    return np.fromiter(chain.from_iterable(sentences), dtype, int(lengths.sum())), lengths


class SplitWriter:
    """Appends encoded pairs chunk by chunk to a temporary directory; ``finish`` moves the
    complete cache into place."""

    def __init__(self, directory: Path, name: str, vocab_size: int) -> None:
        self.directory = directory
        self.name = name
        self.dtype = id_dtype(vocab_size)
        self.temporary = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
        directory.parent.mkdir(parents=True, exist_ok=True)
        for stale in directory.parent.glob(f".{directory.name}.tmp-*"):  # killed writers' (one
            shutil.rmtree(stale, ignore_errors=True)  # rank writes a cache: none is live)
        self.temporary.mkdir()
        self.files = {side: open(self.temporary / f"{side}.ids", "wb") for side in SIDES}
        self.lengths: dict[str, list[np.ndarray]] = {side: [] for side in SIDES}

    def add(self, *sides: tuple[np.ndarray, np.ndarray]) -> None:
        """Append encoded pairs: per side, ``(ids, lengths)`` as ``flatten`` makes them."""
        for side, (ids, lengths) in zip(SIDES, sides, strict=True):
            ids.astype(self.dtype, copy=False).tofile(self.files[side])
            self.lengths[side].append(lengths)

    def finish(self, manifest: dict) -> MappedSplit:
        """Write offsets and manifest, fsync, and rename the directory into place."""
        counts = {}
        for side in SIDES:
            self.files[side].close()  # fsynced with the other files below
            lengths = np.concatenate(self.lengths[side] or [np.zeros(0, dtype=np.int64)])
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            np.save(self.temporary / f"{side}.offsets.npy", offsets)
            counts[f"{side}_tokens"] = int(offsets[-1])
            counts["pairs"] = len(lengths)
        manifest = {
            "version": FORMAT_VERSION,
            "name": self.name,
            "dtype": np.dtype(self.dtype).name,
            **counts,
            **manifest,
        }
        (self.temporary / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for path in self.temporary.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        fsync_directory(self.temporary)
        shutil.rmtree(self.directory, ignore_errors=True)  # a stale cache under the same key
        os.replace(self.temporary, self.directory)
        fsync_directory(self.directory.parent)
        split = open_split(self.directory, manifest["key"])
        assert split is not None, f"{self.directory}: the cache just written does not open"
        return split

    def abandon(self) -> None:
        for handle in self.files.values():
            handle.close()
        shutil.rmtree(self.temporary, ignore_errors=True)


# Encoding in worker processes: SentencePiece holds the GIL while it encodes, so reading and
# cleaning the next chunk in this process overlaps with encoding only across processes. This
# module imports no torch, so spawned workers start in a fraction of a second.
_worker_tokenizers: tuple[Tokenizer, Tokenizer] | None = None


def start_encoder(src_proto: bytes, tgt_proto: bytes) -> None:
    """A worker's initializer: build its tokenizers once."""
    global _worker_tokenizers
    _worker_tokenizers = (Tokenizer(src_proto), Tokenizer(tgt_proto))


def encode_pairs(
    src: Sequence[str],
    tgt: Sequence[str],
    max_tokens: int,
    dtype: str,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
    threads: int = 1,
) -> tuple:
    """Encode cleaned pairs, leaving out those longer than ``max_tokens`` pieces (cut, a target
    would still end with EOS). Returns each side's ``flatten`` arrays, how many pairs were left
    out and their source and target words."""
    texts = (src, tgt)
    sides = [
        flatten(tokenizer.encode_batch(lines, threads), np.dtype(dtype))
        for tokenizer, lines in zip(tokenizers or _worker_tokenizers, texts)
    ]
    long = np.maximum(sides[0][1], sides[1][1]) > max_tokens
    left_out = np.flatnonzero(long).tolist()
    words = tuple(sum(len(lines[i].split()) for i in left_out) for lines in texts)
    if left_out:
        sides = [(ids[np.repeat(~long, lengths)], lengths[~long]) for ids, lengths in sides]
    return *sides, len(left_out), words
