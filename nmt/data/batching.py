"""Length-bucketed, token-budget batches of padded id tensors, ready for packed RNNs.

Sorting by length before cutting batches keeps padding near zero (random 64-sentence batches
compute about twice the real positions); the budget counts padded source plus target positions
so that a batch of long sentences holds fewer of them. Batch order is shuffled by (seed, epoch),
so a run is reproducible and a resumed run can rebuild the exact epoch it stopped in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

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


def encode_split(pairs: ParallelSplit, vocabs: Vocabularies) -> EncodedSplit:
    """Tokenize both sides, whole."""
    return EncodedSplit(
        pairs.name, vocabs.src.encode_batch(pairs.src), vocabs.tgt.encode_batch(pairs.tgt)
    )


def make_batches(
    src_lens: Sequence[int],
    tgt_lens: Sequence[int],
    batch_tokens: int,
    batch_sents: int,
    seed: int | None = None,
) -> list[list[int]]:
    """Group sentence indices into batches of similar length under a padded-token budget.

    Args:
        src_lens, tgt_lens: lengths in pieces (without the added EOS/BOS) per sentence.
        batch_tokens: max of batch_size * (longest source + longest target), specials included.
            A single sentence above the budget still gets a batch of its own: none is dropped.
        batch_sents: max sentences per batch.
        seed: shuffle ties within a length and the order of batches; None keeps length order
            (for decoding).
    """
    order = list(range(len(src_lens)))
    rng = random.Random(seed) if seed is not None else None
    if rng is not None:
        rng.shuffle(order)
    order.sort(key=lambda i: (src_lens[i], tgt_lens[i]))  # stable: ties keep the shuffled order
    batches, current, max_src, max_tgt = [], [], 0, 0
    for index in order:
        new_src, new_tgt = max(max_src, src_lens[index] + 1), max(max_tgt, tgt_lens[index] + 1)
        too_big = (len(current) + 1) * (new_src + new_tgt) > batch_tokens
        if current and (too_big or len(current) == batch_sents):
            batches.append(current)
            current, new_src, new_tgt = [], src_lens[index] + 1, tgt_lens[index] + 1
        current.append(index)
        max_src, max_tgt = new_src, new_tgt
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _pad(sequences: list[list[int]]) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    return torch.tensor([s + [PAD_ID] * (width - len(s)) for s in sequences], dtype=torch.long)


def collate(split: EncodedSplit, indices: Sequence[int]) -> Batch:
    """Build the padded tensors for the sentences ``indices`` of ``split``."""
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
) -> list[list[int]]:
    """The batches of one pass over ``split`` (shuffled by ``seed``, or in length order)."""
    return make_batches(
        [len(s) for s in split.src], [len(t) for t in split.tgt], batch_tokens, batch_sents, seed
    )
