"""Vocabulary shortlists: the target pieces each source piece is seen translating into.

Built once per binarized training split (``nmt-prepare``; cached next to the ids, carried by
checkpoints), read by ``decode.shortlist``: a batch's output layer then scores only the
candidates of its source pieces plus the most frequent target pieces, as Marian does, instead
of the whole vocabulary.

Association: over up to ``SAMPLE_PAIRS`` training pairs, ``c(s,t)`` counts the times source
piece s and target piece t occur in one pair; t ranks for s by ``c(s,t)^2 / c(t)`` (how often t
comes with s, weighted by how much of t's use that is), so a piece seen everywhere does not fill
every list: the frequent pieces are candidates anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmt.data.binarized import flatten
from nmt.data.tokenizer import SPECIAL_IDS
from nmt.files import atomic_write

SAMPLE_PAIRS = 50_000
PER_SOURCE = 100  # the most a table keeps; decode.shortlist takes the first k of each row
FREQUENT = 1_000


@dataclass(frozen=True)
class Shortlist:
    """``table[s]``: target ids for source id s, best first, -1 after the last; ``frequent``:
    target ids by descending frequency."""

    table: np.ndarray  # (V_src, PER_SOURCE) int32
    frequent: np.ndarray  # (FREQUENT,) int32

    def candidates(self, src_ids: np.ndarray, per_source: int, frequent: int) -> np.ndarray:
        """Sorted target ids a batch of source ids may produce: the first ``per_source`` of
        each source id's row, the ``frequent`` most frequent pieces and the special ids."""
        rows = self.table[np.unique(src_ids), :per_source].ravel()
        found = np.concatenate([rows[rows >= 0], self.frequent[:frequent], list(SPECIAL_IDS)])
        return np.unique(found.astype(np.int64))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The two arrays, in 16 bits when the ids fit (half the bytes in every checkpoint)."""
        fits = max(int(self.table.max(initial=0)), int(self.frequent.max(initial=0))) < 1 << 15
        kind = np.int16 if fits else np.int32
        return {"table": self.table.astype(kind), "frequent": self.frequent.astype(kind)}

    @classmethod
    def of(cls, arrays) -> Shortlist:
        """From ``to_arrays``' dict (numpy arrays or tensors: checkpoints hold tensors)."""
        return cls(*(np.asarray(arrays[name], dtype=np.int32) for name in ("table", "frequent")))


def cached_shortlist(directory: Path, src, tgt, src_vocab: int, tgt_vocab: int) -> Shortlist:
    """The shortlist saved in ``directory`` (a binarized split's), built and saved when missing."""
    path = directory / "shortlist.npz"
    try:
        with np.load(path) as arrays:
            return Shortlist.of(arrays)
    except (OSError, KeyError, ValueError):
        pass
    shortlist = build_shortlist(src, tgt, src_vocab, tgt_vocab)
    with atomic_write(path) as handle:
        np.savez(handle, **shortlist.to_arrays())
    return shortlist


def build_shortlist(src, tgt, src_vocab: int, tgt_vocab: int) -> Shortlist:
    """The shortlist of a split given as two sequences of id lists (``Ragged`` or lists), from
    up to ``SAMPLE_PAIRS`` pairs spread evenly over it; counts are of token pairs."""
    pairs = len(src)
    chosen = np.unique(np.linspace(0, pairs - 1, min(pairs, SAMPLE_PAIRS)).astype(np.int64))
    ids = np.dtype(np.int64)
    source_ids, source_lengths = flatten([src[i] for i in chosen.tolist()], ids)
    target_ids, target_lengths = flatten([tgt[i] for i in chosen.tolist()], ids)
    source_pair = np.repeat(np.arange(len(chosen)), source_lengths)
    target_starts = np.cumsum(target_lengths) - target_lengths
    # every source token against every target token of its pair, as one flat index array
    repeats = target_lengths[source_pair]
    first = np.repeat(target_starts[source_pair] - (np.cumsum(repeats) - repeats), repeats)
    keys = np.repeat(source_ids, repeats) * tgt_vocab + target_ids[first + np.arange(len(first))]
    pair_keys, together = np.unique(keys, return_counts=True)
    target_counts = np.bincount(target_ids, minlength=tgt_vocab)
    source, target = pair_keys // tgt_vocab, pair_keys % tgt_vocab
    score = together.astype(np.float64) ** 2 / np.maximum(target_counts[target], 1)
    order = np.lexsort((-score, source))  # by source, best first
    source, target = source[order], target[order]
    rank = np.arange(len(source)) - np.searchsorted(source, source)  # place in its source's run
    keep = rank < PER_SOURCE
    table = np.full((src_vocab, PER_SOURCE), -1, dtype=np.int32)
    table[source[keep], rank[keep]] = target[keep]
    frequent = np.argsort(-target_counts, kind="stable")[:FREQUENT].astype(np.int32)
    return Shortlist(table, frequent)
