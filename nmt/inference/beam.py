"""Batched beam search: all sentences and all their beams advance as one tensor computation.

Encoder states and attention keys are computed once per sentence and expanded to K rows; after
every step one ``reorder`` follows the back-pointers. Finished hypotheses retire without stalling
the batch, and done sentences leave it. Shapes: B batch, S source length, T output length,
D memory size, K beam size, V target vocabulary; N = (live sentences) * K rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from nmt.config import BOS_ID, EOS_ID, DecodeConfig
from nmt.inference.beam_history import BeamHistory
from nmt.inference.search import (
    Hypothesis,
    block_repeats,
    collect_hypotheses,
    coverage_penalty,
    length_penalty,
    max_output_lengths,
)
from nmt.model import DecoderState, Seq2Seq, reorder


class _Beams(NamedTuple):
    """The live search: K rows per still-running sentence, sentence-major (N = A*K rows)."""

    active: Tensor  # (A,) original batch index of each running sentence
    limits: Tensor  # (A,) max steps
    scores: Tensor  # (N,) cumulative log-probabilities (-inf marks an empty slot)
    tokens: Tensor  # (N,) the token each row feeds to the next step
    back: Tensor  # (N,) the row of the previous step each row continues (back-pointers)
    coverage: Tensor  # (N,S) attention summed over the row's steps so far; (N,0) when beta = 0
    state: DecoderState  # the decoder state, N rows
    prefix: Tensor  # (N,t) each row's output so far, for no_repeat_ngram (else (N,0))


class _Candidates(NamedTuple):
    """The 2K best expansions of each sentence, best first: score, row (of this step), token."""

    score: Tensor  # (A,2K)
    row: Tensor  # (A,2K)
    token: Tensor  # (A,2K)


@dataclass
class _Finished:
    """A retired hypothesis: its scores and where its path ends in the step history."""

    score: float
    log_prob: float
    step: int  # index of its last step
    row: int  # its row among that step's rows
    last: int  # its last token: EOS, or any token when forced at the maximum length


@torch.inference_mode()
def beam_search(
    model: Seq2Seq,
    src: Tensor,
    src_lens: Tensor,
    cfg: DecodeConfig,
    forced: Sequence[int] = (),
    vocabulary: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Batched beam search: every beam of every sentence advances in one ``decoder.step``.

    Each step takes the 2K best expansions of each sentence (A sentences, K*V candidates each).
    EOS candidates ranked in the top K retire to the sentence's finished list, and the best K
    non-EOS candidates fill the K slots, so finishing never leaves a slot idle. At its maximum
    length (``max_output_lengths``) a sentence's top K candidates all retire, the non-EOS ones
    as they are, without adding an EOS log-probability. A sentence is done once it has K
    finished hypotheses, at its maximum length, or, when scores can only fall (alpha = beta
    = 0), once its best live score cannot beat its n_best-th finished one; done sentences'
    rows are dropped. Ranking score: ``log_prob / length_penalty + coverage_penalty``. Returns
    each sentence's n_best hypotheses (fewer only if fewer finished), best first.

    Args:
        src: (B,S) source ids with EOS, padded. src_lens: (B,) lengths.
        cfg: beam_size K, alpha, beta, max_len_ratio, min_len (EOS is forbidden before
            min_len output tokens) and n_best.
        forced: output ids every sentence must start with (the explorer's "what if").
        vocabulary: the ids of the logits' columns when the output layer scores a shortlist
            (``shortlist.shortlisted``; not with ``forced``); None: column i is id i.
    """
    finished, history = search_steps(model, src, src_lens, cfg, forced, vocabulary)
    return finalize(finished, history, src_lens, cfg.n_best)


def search_steps(
    model: Seq2Seq,
    src: Tensor,
    src_lens: Tensor,
    cfg: DecodeConfig,
    forced: Sequence[int],
    vocabulary: Tensor | None = None,
) -> tuple[list[list[_Finished]], BeamHistory]:
    """The loop: finished hypotheses per sentence and the step history (for ``finalize``)."""
    beams = _start(model, src, src_lens, cfg)
    history, finished = BeamHistory(), [[] for _ in range(src.size(0))]
    for t in range(int(beams.limits.max())):
        out = model.decoder.step(beams.tokens, beams.state)
        history.record(beams, out)
        coverage = beams.coverage + out.attn.float() if cfg.beta else beams.coverage  # (N,S)
        cand = _expand(beams, out.logits, t, cfg, forced[t] if t < len(forced) else None)
        if vocabulary is not None:
            cand = cand._replace(token=vocabulary[cand.token])
        done = _retire(cand, beams, coverage, out.state.mask, t, cfg, finished)  # mask (A,S)
        if bool(done.all()):
            break
        beams = _select(cand, beams, coverage, out.state, ~done, cfg.no_repeat_ngram > 0)
    return finished, history


def _start(model: Seq2Seq, src: Tensor, src_lens: Tensor, cfg: DecodeConfig) -> _Beams:
    """Encode and project keys once per sentence; copy each sentence's recurrent state K times
    (its K rows share its keys and values)."""
    batch, k, device = src.size(0), cfg.beam_size, src.device
    state = model.decoder.init_state(model.encode(src, src_lens))
    rows = torch.arange(batch, device=device).repeat_interleave(k)  # (B*K,)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # only the first slot is live, so the first K expansions all differ
    # coverage is only summed for the coverage penalty: (B*K, 0) without one
    coverage = torch.zeros(batch * k, state.mask.size(1) if cfg.beta else 0, device=device)
    return _Beams(
        torch.arange(batch, device=device),
        max_output_lengths(src_lens, cfg.max_len_ratio).to(device),
        scores.view(-1),
        torch.full_like(rows, BOS_ID),
        rows,
        coverage,
        reorder(state, rows, None),
        torch.zeros(batch * k, 0, dtype=torch.long, device=device),
    )


def _expand(
    beams: _Beams, logits: Tensor, t: int, cfg: DecodeConfig, forced: int | None
) -> _Candidates:
    """The 2K best (slot, token) expansions per sentence from logits (N,V); 2K <= K*V.
    ``forced``: the only token allowed at this step."""
    k = cfg.beam_size
    log_probs = logits.float().log_softmax(-1)  # (N,V)
    if t < cfg.min_len:
        log_probs[:, EOS_ID] = float("-inf")
    if forced is not None:
        allowed = log_probs[:, forced].clone()
        log_probs.fill_(float("-inf"))[:, forced] = allowed
    block_repeats(log_probs, beams.prefix, cfg.no_repeat_ngram)
    # a sentence's 2K best expansions are among its rows' own 2K best tokens: rank those
    # (A,K*2K) instead of all (A,K*V)
    width = min(2 * k, log_probs.size(-1))
    row_best, row_token = log_probs.topk(width, dim=1)  # (N,w)
    total = (beams.scores.unsqueeze(1) + row_best).view(-1, k * width)  # (A,K*w)
    score, flat = total.topk(2 * k, dim=1)  # (A,2K), sorted
    first_row = torch.arange(total.size(0), device=total.device).unsqueeze(1) * k  # (A,1)
    token = row_token.view(-1, k * width).gather(1, flat)
    return _Candidates(score, first_row + flat // width, token)


def _retire(
    cand: _Candidates,
    beams: _Beams,
    coverage: Tensor,
    mask: Tensor,
    t: int,
    cfg: DecodeConfig,
    finished: list[list[_Finished]],
) -> Tensor:
    """Move the finished top-K candidates to ``finished``; return done (A,) bool."""
    at_limit = t + 1 >= beams.limits  # (A,)
    in_top_k = torch.arange(2 * cfg.beam_size, device=cand.score.device) < cfg.beam_size
    retire = (cand.token.eq(EOS_ID) | at_limit.unsqueeze(1)) & in_top_k & cand.score.isfinite()
    sent, slot = retire.nonzero(as_tuple=True)
    rows, log_prob = cand.row[sent, slot], cand.score[sent, slot]
    score = log_prob / length_penalty(torch.full_like(log_prob, t + 1), cfg.alpha)
    if cfg.beta:
        score = score + coverage_penalty(coverage[rows], mask[rows // cfg.beam_size], cfg.beta)
    for b, row, last, lp, sc in zip(
        beams.active[sent].tolist(),
        rows.tolist(),
        cand.token[sent, slot].tolist(),
        log_prob.tolist(),
        score.tolist(),
        strict=True,
    ):
        finished[b].append(_Finished(sc, lp, t, row, last))
    best_live = cand.score.masked_fill(cand.token.eq(EOS_ID), float("-inf")).amax(1)  # (A,)
    done = [
        limit or _enough(finished[b], live, cfg)
        for b, limit, live in zip(
            beams.active.tolist(), at_limit.tolist(), best_live.tolist(), strict=True
        )
    ]
    return torch.tensor(done, device=cand.score.device)


def _enough(finished: list[_Finished], best_live: float, cfg: DecodeConfig) -> bool:
    """K finished, or (scores only fall when alpha = beta = 0) no live row can enter the n_best."""
    if len(finished) >= cfg.beam_size:
        return True
    if cfg.alpha != 0 or cfg.beta != 0 or len(finished) < cfg.n_best:
        return False
    return best_live <= sorted((h.score for h in finished), reverse=True)[cfg.n_best - 1]


def _select(
    cand: _Candidates,
    beams: _Beams,
    coverage: Tensor,
    state: DecoderState,
    keep: Tensor,
    track_prefix: bool,
) -> _Beams:
    """Fill each running sentence's K slots with its K best non-EOS candidates (keep (A,)).

    ``track_prefix`` keeps each row's output tokens so far, which only repetition blocking reads.
    """
    k = cand.score.size(1) // 2
    # a stable sort on is-EOS keeps the score order among the non-EOS candidates
    order = torch.argsort(cand.token.eq(EOS_ID).int(), dim=1, stable=True)[keep, :k]  # (A',K)
    index = cand.row[keep].gather(1, order).view(-1)  # (A'*K,) rows of this step
    tokens = cand.token[keep].gather(1, order).view(-1)
    prefix = beams.prefix[index]
    if track_prefix:
        prefix = torch.cat([prefix, tokens.unsqueeze(1)], dim=1)
    return _Beams(
        beams.active[keep],
        beams.limits[keep],
        cand.score[keep].gather(1, order).view(-1),
        tokens,
        index,
        coverage[index],
        # while no sentence leaves, rows only move within their sentence: its memory stays
        reorder(state, index, None if bool(keep.all()) else keep.nonzero().squeeze(1)),
        prefix,
    )


def finalize(
    finished: list[list[_Finished]], history: BeamHistory, src_lens: Tensor, n_best: int
) -> list[list[Hypothesis]]:
    """Rank each sentence's finished hypotheses, backtrack the n_best, cut them per sentence."""
    kept = [sorted(hyps, key=lambda h: h.score, reverse=True)[:n_best] for hyps in finished]
    flat = [h for hyps in kept for h in hyps]
    device = history.tokens[0].device
    ends = torch.tensor([h.step for h in flat], device=device)
    rows = torch.tensor([h.row for h in flat], device=device)
    last = torch.tensor([h.last for h in flat], device=device)
    sentence = torch.tensor([b for b, hyps in enumerate(kept) for _ in hyps])
    hypotheses = iter(
        collect_hypotheses(
            history.backtrack(ends, rows, last),
            ends.cpu() + 1,
            src_lens.cpu()[sentence],
            torch.tensor([h.log_prob for h in flat]),
            torch.tensor([h.score for h in flat]),
        )
    )
    return [[next(hypotheses) for _ in hyps] for hyps in kept]
