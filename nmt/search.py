"""Search: greedy decoding and batched beam search over ``decoder.step``.

Every hypothesis carries the attention rows and context vectors of the steps that produced it,
so alignments and heatmaps at test time need no second pass. Shapes: B batch, S source length,
T output length, D memory size, K beam size, V target vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from nmt.config import BOS_ID, EOS_ID
from nmt.model import Seq2Seq


@dataclass
class Hypothesis:
    """One output sentence with the attention that produced it.

    Attributes:
        tokens: output ids without BOS and EOS.
        score: log-probability (beam search: after length and coverage normalization).
        attn: (T, S) attention of each output step (EOS step included) over the real source
            positions (source EOS included).
        context: (T, D) context vector of each output step.
        head_attn: (T, h, S) per-head attention for multi-head scorers, else None.
    """

    tokens: list[int]
    score: float
    attn: Tensor
    context: Tensor
    head_attn: Optional[Tensor] = None


def max_output_lengths(src_lens: Tensor, ratio: float) -> Tensor:
    """(B,) longest output per sentence, EOS included: ratio * source length + 10."""
    return (src_lens.float() * ratio).long() + 10


@torch.no_grad()
def greedy(model: Seq2Seq, src: Tensor, src_lens: Tensor, max_len_ratio: float) -> list[Hypothesis]:
    """Pick the most probable token at every step, for the whole batch at once.

    Args:
        src: (B,S) source ids with EOS, padded. src_lens: (B,) lengths.
        max_len_ratio: a sentence stops after ``max_output_lengths`` steps even without EOS.
    """
    enc = model.encode(src, src_lens)
    state = model.decoder.init_state(enc)
    limits = max_output_lengths(src_lens, max_len_ratio)
    y_prev = torch.full_like(src_lens, BOS_ID)
    finished = torch.zeros_like(src_lens, dtype=torch.bool)
    lengths = limits.clone()  # steps taken per sentence, EOS included
    tokens, scores, attns, contexts, heads = [], torch.zeros(src.size(0)), [], [], []
    for t in range(int(limits.max())):
        out = model.decoder.step(y_prev, state)
        log_probs = out.logits.float().log_softmax(-1)  # (B,V)
        best, y_prev = log_probs.max(-1)
        scores += torch.where(finished, torch.zeros_like(best), best).cpu()
        tokens.append(y_prev)
        attns.append(out.attn)
        contexts.append(out.context)
        heads.append(out.head_attn)
        newly_done = ~finished & ((y_prev == EOS_ID) | (t + 1 >= limits))
        lengths[newly_done] = t + 1
        finished |= newly_done
        state = out.state
        if bool(finished.all()):
            break
    return _collect(torch.stack(tokens, 1), scores, lengths, src_lens, attns, contexts, heads)


def _collect(tokens: Tensor, scores: Tensor, lengths: Tensor, src_lens: Tensor,
             attns: list[Tensor], contexts: list[Tensor],
             heads: list[Optional[Tensor]]) -> list[Hypothesis]:
    """Cut the stacked (B,T,...) step outputs into one Hypothesis per sentence."""
    attn, context = torch.stack(attns, 1).cpu(), torch.stack(contexts, 1).cpu()  # (B,T,S), (B,T,D)
    head_attn = None if heads[0] is None else torch.stack(heads, 1).cpu()  # (B,T,h,S)
    tokens, hypotheses = tokens.cpu(), []
    for b, (steps, source) in enumerate(zip(lengths.tolist(), src_lens.tolist())):
        ids = tokens[b, :steps].tolist()
        if ids and ids[-1] == EOS_ID:
            ids = ids[:-1]
        hypotheses.append(Hypothesis(
            ids, float(scores[b]), attn[b, :steps, :source], context[b, :steps],
            None if head_attn is None else head_attn[b, :steps, :, :source]))
    return hypotheses
