"""Length-bucketed, token-budget batches of padded id tensors, ready for packed RNNs.

Sorting by length before cutting batches keeps padding near zero (random 64-sentence batches
compute about twice the real positions); the budget counts padded source plus target positions
so that a batch of long sentences holds fewer of them. Batch order is shuffled by (seed, epoch),
so a run is reproducible and a resumed run can rebuild the exact epoch it stopped in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # torch is imported where tensors are made: nmt-prepare never needs it
    import torch

from nmt.config import BOS_ID, EOS_ID, PAD_ID
from nmt.data.corpus import ParallelSplit
from nmt.data.tokenizer import Vocabularies


class Batch(NamedTuple):
    """Padded tensors of one batch. Shapes: B sentences, S source and T target positions.

    Attributes:
        src: (B, S) source ids followed by EOS, PAD after.
        src_lens: (B,) real source lengths, EOS included.
        tgt_in: (B, T) BOS y_1 ... y_n, the decoder's teacher-forced input.
        tgt_out: (B, T) y_1 ... y_n EOS, the prediction targets.
        indices: (B,) positions of the sentences in their split, to restore input order.
    """

    src: torch.Tensor
    src_lens: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    indices: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in self))

    @property
    def n_tgt_tokens(self) -> int:
        """Real target tokens including EOS: what the loss is normalized by."""
        return int((self.tgt_out != PAD_ID).sum())


@dataclass
class EncodedSplit:
    """A split as piece ids (no BOS/EOS)."""

    name: str
    src: list[list[int]]
    tgt: list[list[int]]

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, indices: Sequence[int]) -> EncodedSplit:
        """The sentences at ``indices``, in that order."""
        return EncodedSplit(
            self.name, [self.src[i] for i in indices], [self.tgt[i] for i in indices]
        )

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        """Source and target lengths in pieces (no EOS/BOS), what batches are planned from."""
        return np.array([len(s) for s in self.src]), np.array([len(t) for t in self.tgt])


def encode_split(pairs: ParallelSplit, vocabs: Vocabularies) -> EncodedSplit:
    """Tokenize both sides, whole."""
    return EncodedSplit(
        pairs.name, vocabs.src.encode_batch(pairs.src), vocabs.tgt.encode_batch(pairs.tgt)
    )


class BatchPlan(Sequence):
    """An epoch's batches as one array of sentence indices and each batch's slice of it, so a
    plan over millions of pairs holds no Python object per sentence.

    ``plan[k]`` is batch k's indices as a list; a plan equals a list of lists of the same
    batches.
    """

    def __init__(self, order: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.order, self.starts, self.ends = order, starts, ends

    @classmethod
    def of(cls, batches: Sequence[Sequence[int]]) -> BatchPlan:
        """A plan of batches given as lists (a plan is returned as it is)."""
        if isinstance(batches, BatchPlan):
            return batches
        ends = np.cumsum([len(batch) for batch in batches], dtype=np.int64)
        starts = ends - [len(batch) for batch in batches]
        order = np.array([i for batch in batches for i in batch], dtype=np.int64)
        return cls(order, starts, ends)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return BatchPlan(self.order, self.starts[k], self.ends[k])
        return self.order[self.starts[k] : self.ends[k]].tolist()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == list(b) for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]


def make_batches(
    src_lens: Sequence[int] | np.ndarray,
    tgt_lens: Sequence[int] | np.ndarray,
    batch_tokens: int,
    batch_sents: int,
    seed: int | None = None,
) -> BatchPlan:
    """Group sentence indices into batches of similar length under a padded-token budget.

    Planned from the two length arrays alone (numpy sorts millions of pairs in a second), so a
    memory-mapped corpus is never read to batch it.

    Args:
        src_lens, tgt_lens: lengths in pieces (without the added EOS/BOS) per sentence.
        batch_tokens: max of batch_size * (longest source + longest target), specials included.
            A single sentence above the budget still gets a batch of its own: none is dropped.
        batch_sents: max sentences per batch.
        seed: shuffle ties within a length and the order of batches; None keeps length order
            (for decoding).
    """
    src, tgt = np.asarray(src_lens, dtype=np.int64), np.asarray(tgt_lens, dtype=np.int64)
    rng = np.random.default_rng(seed) if seed is not None else None
    order = np.arange(len(src)) if rng is None else rng.permutation(len(src))
    key = src[order] * (int(tgt.max(initial=0)) + 1) + tgt[order]  # source, then target length
    if key.max(initial=0) < 1 << 16:
        key = key.astype(np.uint16)  # numpy sorts 16-bit keys by radix, in linear time
    order = order[np.argsort(key, kind="stable")]  # stable: ties keep the shuffled order
    starts_array = _cut(src[order] + 1, tgt[order] + 1, batch_tokens, batch_sents)
    ends = np.append(starts_array[1:], len(order))[: len(starts_array)]
    if rng is not None:
        shuffled = rng.permutation(len(starts_array))
        starts_array, ends = starts_array[shuffled], ends[shuffled]
    return BatchPlan(order, starts_array, ends)


def _cut(src: np.ndarray, tgt: np.ndarray, batch_tokens: int, batch_sents: int) -> np.ndarray:
    """Where each batch starts, cutting the sentences in order: a batch takes the next sentence
    while it stays within ``batch_sents`` and its padded size (sentences times longest source
    plus longest target, specials included) within ``batch_tokens``.

    One step per batch, not per sentence: a batch's candidates are at most ``batch_sents`` long,
    and its padded size only grows as it takes more, so its end is the first candidate over."""
    sizes = np.arange(1, batch_sents + 1)
    starts, start = [], 0
    while start < len(src):
        stop = min(start + batch_sents, len(src))
        longest = np.maximum.accumulate(src[start:stop]) + np.maximum.accumulate(tgt[start:stop])
        over = np.flatnonzero(sizes[1 : stop - start] * longest[1:] > batch_tokens)
        starts.append(start)
        start = start + 1 + int(over[0]) if len(over) else stop
    return np.array(starts, dtype=np.int64)


def _pad(sequences: list[list[int]]) -> torch.Tensor:
    import torch

    width = max(len(s) for s in sequences)
    return torch.tensor([s + [PAD_ID] * (width - len(s)) for s in sequences], dtype=torch.long)


def collate(split: EncodedSplit, indices: Sequence[int]) -> Batch:
    """Build the padded tensors for the sentences ``indices`` of ``split``."""
    import torch

    src = [split.src[i] + [EOS_ID] for i in indices]
    tgt = [split.tgt[i] for i in indices]
    return Batch(
        src=_pad(src),
        src_lens=torch.tensor([len(s) for s in src], dtype=torch.long),
        tgt_in=_pad([[BOS_ID] + t for t in tgt]),
        tgt_out=_pad([t + [EOS_ID] for t in tgt]),
        indices=torch.tensor(list(indices), dtype=torch.long),
    )


def epoch_batches(
    split: EncodedSplit, batch_tokens: int, batch_sents: int, seed: int | None
) -> BatchPlan:
    """The batches of one pass over ``split`` (shuffled by ``seed``, or in length order)."""
    return make_batches(*split.lengths(), batch_tokens, batch_sents, seed)


def shard(batches: Sequence[Sequence[int]], rank: int, world: int, group: int = 1) -> BatchPlan:
    """This rank's share of an epoch's batches, every pair on exactly one rank.

    Updates need the same number of batches on every rank (``world``) and whole accumulation
    groups (``group`` batches per update), so the largest batches are split in halves until the
    count divides by ``world * group``; only a corpus of one-sentence batches loses its tail.
    """
    plan = BatchPlan.of(batches)
    starts, ends, divisor = plan.starts.tolist(), plan.ends.tolist(), world * group
    while len(starts) % divisor:
        sizes = [end - start for start, end in zip(starts, ends)]
        largest = sizes.index(max(sizes))
        if sizes[largest] < 2:
            cut = len(starts) - len(starts) % divisor
            starts, ends = starts[:cut], ends[:cut]
            break
        middle = starts[largest] + sizes[largest] // 2
        starts[largest : largest + 1] = [starts[largest], middle]
        ends[largest : largest + 1] = [middle, ends[largest]]
    share = slice(rank, None, world)
    return BatchPlan(plan.order, np.array(starts[share], np.int64), np.array(ends[share], np.int64))
