"""Search: hypotheses, greedy decoding, and the penalties beam search (``beam.py``) shares.

Every hypothesis carries the attention rows and context vectors of the steps that produced it,
so alignments and heatmaps at test time need no second pass. Shapes: B batch, S source length,
T output length, D memory size, K beam size, V target vocabulary; N = (live sentences) * K rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from nmt.config import BOS_ID, EOS_ID
from nmt.model import Seq2Seq, StepOutput, reorder


@dataclass
class Hypothesis:
    """One output sentence with the attention that produced it.

    Attributes:
        tokens: output ids without BOS and EOS.
        score: the ranking score: greedy, the log-probability; beam search, after length and
            coverage normalization (``log_prob / lp + cp``).
        attn: (T, S) attention of each output step (EOS step included) over the real source
            positions (source EOS included). T = len(tokens) + 1, or len(tokens) when the
            sentence hit its maximum length without EOS.
        context: (T, D) context vector of each output step.
        head_attn: (T, h, S) per-head attention for multi-head scorers, else None.
        log_prob: the raw log-probability of the T output steps.
    """

    tokens: list[int]
    score: float
    attn: Tensor
    context: Tensor
    head_attn: Tensor | None = None
    log_prob: float = 0.0


class Steps(NamedTuple):
    """Step outputs stacked per row: tokens (M,T), attn (M,T,S), context (M,T,D), head_attn."""

    tokens: Tensor
    attn: Tensor
    context: Tensor
    head_attn: Tensor | None  # (M,T,h,S) or None


def max_output_lengths(src_lens: Tensor, ratio: float) -> Tensor:
    """(B,) longest output per sentence, EOS included: ratio * source length + 10."""
    return (src_lens.float() * ratio).long() + 10


def length_penalty(steps: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ``lp(Y) = (5 + |Y|)^alpha / 6^alpha`` (Wu et al., 2016).

    Args:
        steps: (M,) |Y|, the output steps counted with EOS (the forced last token of a sentence
            that hit its maximum length counts like EOS would).
    """
    return ((5.0 + steps.float()) / 6.0) ** alpha


def coverage_penalty(coverage: Tensor, mask: Tensor, beta: float) -> Tensor:
    """GNMT coverage penalty ``cp = beta * sum_j log(min(sum_t a_tj, 1))`` over real positions j.

    Args:
        coverage: (M,S) attention summed over output steps. mask: (M,S) True on real tokens.

    The coverage is floored at 1e-10 so a source word no step attends to (possible with sparse
    or hard attention) costs ``beta * log(1e-10)`` rather than an infinite penalty.
    """
    logs = coverage.float().clamp(min=1e-10, max=1.0).log()
    return beta * logs.masked_fill(~mask, 0.0).sum(-1)


def block_repeats(log_probs: Tensor, prefix: Tensor, n: int) -> None:
    """Forbid, in place, every token that would complete an n-gram already in the row's output.

    Args:
        log_probs: (N,V) next-token scores of N rows; banned entries become -inf.
        prefix: (N,t) the tokens each row has produced so far (no BOS).
        n: the n-gram size; an n-gram may occur once per output.
    """
    t = prefix.size(1)
    if n <= 0 or t < n:
        return
    windows = prefix.unfold(1, n, 1)  # (N, t-n+1, n): every n-gram so far
    context = prefix[:, t - n + 1 :].unsqueeze(1)  # (N, 1, n-1): the last n-1 tokens
    repeats = (windows[:, :, :-1] == context).all(-1)  # (N, t-n+1): n-grams this would redo
    counts = torch.zeros_like(log_probs).scatter_add_(1, windows[:, :, -1], repeats.float())
    log_probs.masked_fill_(counts > 0, float("-inf"))


@torch.inference_mode()
def greedy(
    model: Seq2Seq,
    src: Tensor,
    src_lens: Tensor,
    max_len_ratio: float,
    no_repeat_ngram: int = 0,
    vocabulary: Tensor | None = None,
) -> list[Hypothesis]:
    """Pick the most probable token at every step, for the whole batch at once.

    Finished sentences leave the running batch once an eighth of its rows have finished (one
    ``reorder`` of the decoder state then, rather than a copy of it at every step); until then
    they are decoded along, their outputs past EOS cut off by ``collect_hypotheses``. Each
    step's outputs are scattered back into full (B,...) rows once rows have left.

    Args:
        src: (B,S) source ids with EOS, padded. src_lens: (B,) lengths.
        max_len_ratio: a sentence stops after ``max_output_lengths`` steps even without EOS.
        no_repeat_ngram: forbid repeating an n-gram of this size (0: off).
        vocabulary: the ids of the logits' columns when the output layer scores a shortlist
            (``shortlist.shortlisted``); None: column i is id i.
    """
    batch = src.size(0)
    state = model.decoder.init_state(model.encode(src, src_lens))
    limits = max_output_lengths(src_lens, max_len_ratio).to(src.device)
    active = torch.arange(batch, device=src.device)  # (A,) sentence of each row
    running = torch.ones(batch, dtype=torch.bool, device=src.device)  # (A,) not finished
    y_prev = torch.full_like(src_lens, BOS_ID, device=src.device)
    lengths = limits.clone()  # steps taken per sentence, EOS included
    scores = torch.zeros(batch, device=src.device)
    history: list[tuple[Tensor, ...]] = []
    for t in range(int(limits.max())):
        out = model.decoder.step(y_prev, state)
        logits = out.logits.float()  # (A,V)
        if no_repeat_ngram and history:
            log_probs = logits.log_softmax(-1)
            prefix = torch.stack([step[0] for step in history], 1)[active]  # (A,t)
            block_repeats(log_probs, prefix, no_repeat_ngram)
            best, y_prev = log_probs.max(-1)
        else:  # the winner's log-probability without writing all of them
            top, y_prev = logits.max(-1)
            best = top - logits.logsumexp(-1)
        if vocabulary is not None:
            y_prev = vocabulary[y_prev]
        scores.index_add_(0, active, best.masked_fill_(~running, 0.0))
        if active.numel() == batch:  # no row has left: the step's rows are the batch's
            history.append((y_prev, out.attn, out.context, out.head_attn))
        else:
            history.append(_scatter_rows(batch, active, y_prev, out))
        done = running & ((y_prev == EOS_ID) | (t + 1 >= limits[active]))
        lengths[active[done]] = t + 1
        running &= ~done
        left = int(running.sum())
        if left == 0:
            break
        state = out.state
        if left <= running.numel() * 7 // 8:
            keep = running.nonzero().squeeze(1)
            active, y_prev, running = active[keep], y_prev[keep], running[keep]
            state = reorder(state, keep, keep)  # one row per sentence
    tokens, attn, context, heads = (list(column) for column in zip(*history))
    head_attn = None if heads[0] is None else torch.stack(heads, 1)
    steps = Steps(torch.stack(tokens, 1), torch.stack(attn, 1), torch.stack(context, 1), head_attn)
    return collect_hypotheses(steps, lengths, src_lens, scores, scores)


def _scatter_rows(batch: int, active: Tensor, tokens: Tensor, out: StepOutput) -> tuple:
    """One step's tokens, attn, context and head_attn of the active rows, as full (B,...) rows."""

    def full(values: Tensor | None, fill: float) -> Tensor | None:
        if values is None:
            return None
        rows = values.new_full((batch, *values.shape[1:]), fill)
        return rows.index_copy_(0, active, values)

    return (
        full(tokens, EOS_ID),
        full(out.attn, 0.0),
        full(out.context, 0.0),
        full(out.head_attn, 0.0),
    )


def collect_hypotheses(
    steps: Steps, lengths: Tensor, src_lens: Tensor, log_probs: Tensor, scores: Tensor
) -> list[Hypothesis]:
    """Cut stacked rows into hypotheses; lengths, src_lens, log_probs, scores are all (M,)."""
    tokens, attn, context = (
        steps.tokens.cpu(),
        steps.attn.float().cpu(),
        steps.context.float().cpu(),
    )
    head_attn = None if steps.head_attn is None else steps.head_attn.float().cpu()
    log_probs, scores = log_probs.tolist(), scores.tolist()
    hypotheses = []
    for m, (n, source) in enumerate(zip(lengths.tolist(), src_lens.tolist(), strict=True)):
        ids = tokens[m, :n].tolist()
        if ids and ids[-1] == EOS_ID:
            ids = ids[:-1]
        hypotheses.append(
            Hypothesis(
                ids,
                scores[m],
                attn[m, :n, :source],
                context[m, :n],
                None if head_attn is None else head_attn[m, :n, :, :source],
                log_probs[m],
            )
        )
    return hypotheses
