"""The step history of a beam search, followed back once at the end.

Lists of per-step tensors plus back-pointers cost nothing per step; re-indexing a growing
(N,t,S) history with the back-pointers at every step would cost O(T^2) copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from nmt.inference.search import Steps
from nmt.model import StepOutput

if TYPE_CHECKING:
    from nmt.inference.beam import _Beams


@dataclass
class BeamHistory:
    """Per-step outputs of the rows alive at each step."""

    tokens: list[Tensor] = field(default_factory=list)  # [t] (N_t,) the token fed at step t
    back: list[Tensor] = field(default_factory=list)  # [t] (N_t,) row of step t-1 continued
    scores: list[Tensor] = field(default_factory=list)  # [t] (N_t,) log-prob of the row's prefix
    active: list[Tensor] = field(default_factory=list)  # [t] (A_t,) sentence of each K rows
    attn: list[Tensor] = field(default_factory=list)  # [t] (N_t,S)
    context: list[Tensor] = field(default_factory=list)  # [t] (N_t,D)
    heads: list[Tensor | None] = field(default_factory=list)  # [t] (N_t,h,S) or None

    def record(self, beams: _Beams, out: StepOutput) -> None:
        self.tokens.append(beams.tokens)
        self.back.append(beams.back)
        self.scores.append(beams.scores)
        self.active.append(beams.active)
        self.attn.append(out.attn)
        self.context.append(out.context)
        self.heads.append(out.head_attn)

    def backtrack(self, ends: Tensor, rows: Tensor, last: Tensor) -> Steps:
        """Follow M paths back from their last step ends (M,), row (M,) and token last (M,)."""
        m, steps = ends.numel(), int(ends.max()) + 1
        first_attn, first_head = self.attn[0], self.heads[0]
        attn = first_attn.new_zeros(m, steps, first_attn.size(-1))
        context = self.context[0].new_zeros(m, steps, self.context[0].size(-1))
        heads = (
            None if first_head is None else first_head.new_zeros(m, steps, *first_head.shape[1:])
        )
        tokens = last.new_zeros(m, steps)
        tokens[torch.arange(m, device=ends.device), ends] = last
        rows = rows.clone()
        for t in reversed(range(steps)):
            alive = (ends >= t).nonzero().squeeze(1)
            here = rows[alive]
            attn[alive, t] = self.attn[t][here]
            context[alive, t] = self.context[t][here]
            if heads is not None:
                heads[alive, t] = self.heads[t][here]
            if t > 0:
                tokens[alive, t - 1] = self.tokens[t][here]
                rows[alive] = self.back[t][here]
        return Steps(tokens, attn, context, heads)
