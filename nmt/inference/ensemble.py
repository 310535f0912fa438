"""Several models searched as one: per step, the log of the mean of their probabilities.

``Ensemble`` offers what search and forced decoding call on a ``Seq2Seq`` (``encode``,
``decoder.init_state``, ``decoder.step``, ``forward``), so greedy and batched beam search run on
it unchanged. The attention and context it reports are the models' means (the context only when
all models share its size; otherwise the first model's).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from nmt.model import DecoderOutput, DecoderState, Seq2Seq, StepOutput


class EnsembleState(NamedTuple):
    """One ``DecoderState`` per model; reordered together."""

    states: tuple[DecoderState, ...]

    @property
    def mask(self) -> Tensor:
        return self.states[0].mask

    def select(self, index: Tensor, memory: Tensor | None) -> EnsembleState:
        return EnsembleState(tuple(state.select(index, memory) for state in self.states))


def mean_log_probs(logits: list[Tensor]) -> Tensor:
    """log((1/n) sum_i softmax(logits_i)), in float32: the ensemble's next-token distribution."""
    log_probs = torch.stack([x.float().log_softmax(-1) for x in logits])
    return log_probs.logsumexp(0) - math.log(len(logits))


def _mean_or_first(tensors: list[Tensor | None]) -> Tensor | None:
    if tensors[0] is None or any(t.shape != tensors[0].shape for t in tensors):
        return tensors[0]
    return torch.stack([t.float() for t in tensors]).mean(0)


class _EnsembleDecoder:
    def __init__(self, models: nn.ModuleList) -> None:
        self.models = models

    def init_state(self, encoded: tuple) -> EnsembleState:
        return EnsembleState(
            tuple(m.decoder.init_state(enc) for m, enc in zip(self.models, encoded, strict=True))
        )

    def step(self, y_prev: Tensor, state: EnsembleState, enc=None) -> StepOutput:
        outs = [m.decoder.step(y_prev, s) for m, s in zip(self.models, state.states, strict=True)]
        return StepOutput(
            mean_log_probs([o.logits for o in outs]),
            EnsembleState(tuple(o.state for o in outs)),
            _mean_or_first([o.attn for o in outs]),
            _mean_or_first([o.context for o in outs]),
            None,
        )


class Ensemble(nn.Module):
    """Models with one vocabulary, searched together (``load_translator`` checks the vocabulary)."""

    def __init__(self, models: list[Seq2Seq]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)
        self.decoder = _EnsembleDecoder(self.models)

    def encode(self, src: Tensor, src_lens: Tensor) -> tuple:
        return tuple(m.encode(src, src_lens) for m in self.models)

    def forward(self, src: Tensor, src_lens: Tensor, tgt_in: Tensor) -> DecoderOutput:
        """Teacher forcing: the mean distribution, and the models' mean attention."""
        outs = [m(src, src_lens, tgt_in) for m in self.models]
        return DecoderOutput(
            mean_log_probs([o.logits for o in outs]),
            _mean_or_first([o.attn for o in outs]),
            _mean_or_first([o.context for o in outs]),
            None,
        )
