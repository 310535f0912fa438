"""The output layer over a shortlist: each batch scores only its candidate target pieces.

``shortlisted(model, candidates)`` swaps every decoder's output layer for one that multiplies
the candidates' rows alone (an 8,000-piece vocabulary cut to a few hundred or thousand), so a
step's logits are (N, C) over ``candidates`` (sorted ids) instead of (N, V); greedy and beam
search, given ``vocabulary=candidates``, turn a chosen column back into its id. The special
pieces are always candidates, and sorted first, so PAD UNK BOS EOS keep their ids as columns.
With every piece a candidate, the logits are the full layer's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn
from torch.nn import functional as F

from nmt.inference.ensemble import Ensemble
from nmt.inference.int8 import Int8Linear


class ShortlistOutput(nn.Module):
    """``full``'s logits of ``candidates`` (sorted target ids) only: (..., C)."""

    def __init__(self, full: nn.Linear | Int8Linear, candidates: Tensor) -> None:
        super().__init__()
        self.int8 = full.rows(candidates) if isinstance(full, Int8Linear) else None
        if self.int8 is None:  # the candidates' rows, gathered once per batch, not per step
            self.weight = full.weight[candidates]
            self.bias = None if full.bias is None else full.bias[candidates]

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias) if self.int8 is None else self.int8(x)


@contextmanager
def shortlisted(model: nn.Module, candidates: Tensor | None) -> Iterator[None]:
    """Within the block, ``model`` (or each member of an ensemble) scores only ``candidates``
    (sorted, specials included); None leaves it as it is."""
    if candidates is None:
        yield
        return
    decoders = [m.decoder for m in model.models] if isinstance(model, Ensemble) else [model.decoder]
    originals = [decoder.out for decoder in decoders]
    try:
        for decoder, full in zip(decoders, originals):
            decoder.out = ShortlistOutput(full, candidates)
        yield
    finally:
        for decoder, full in zip(decoders, originals):
            decoder.out = full
