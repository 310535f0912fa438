"""Search: beam 1 == greedy, batched == alone, scores == teacher forcing, exhaustive, oracle."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import SRC_LENS, random_src, tiny_model

from nmt.config import BOS_ID, EOS_ID, PAD_ID, DecodeConfig
from nmt.inference import beam
from nmt.inference.beam import beam_search
from nmt.inference.search import Hypothesis, greedy
from nmt.model import DecoderState, StepOutput


def ends_with_eos(hyp: Hypothesis) -> bool:
    """A hypothesis has one attention row per step: len(tokens) + 1 with EOS, else len(tokens)."""
    return hyp.attn.size(0) == len(hyp.tokens) + 1


def teacher_forced(model, src, src_len: int, hyp: Hypothesis):
    """The model's log-probability and attention (T,S_real) of ``hyp`` under teacher forcing."""
    outputs = hyp.tokens + [EOS_ID] if ends_with_eos(hyp) else hyp.tokens
    tgt_in = torch.tensor([[BOS_ID] + outputs[:-1]])
    with torch.no_grad():
        out = model(src[None, :src_len], torch.tensor([src_len]), tgt_in)
    log_probs = out.logits[0].float().log_softmax(-1)  # (T,V)
    return float(log_probs.gather(1, torch.tensor(outputs)[:, None]).sum()), out.attn[0]


def gnmt_score(log_prob: float, attn: torch.Tensor, alpha: float, beta: float) -> float:
    """log_prob / lp + cp, from the hypothesis' own (T,S) attention (softmax: no zero coverage)."""
    length_penalty = ((5 + attn.size(0)) / 6) ** alpha
    coverage = float(attn.sum(0).clamp(max=1.0).log().sum())
    return log_prob / length_penalty + beta * coverage


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_beam_one_equals_greedy(decoder):
    model = tiny_model(decoder)
    src, src_lens = random_src(SRC_LENS)
    greedy_hyps = greedy(model, src, src_lens, max_len_ratio=1.5)
    beam_hyps = beam_search(
        model, src, src_lens, DecodeConfig(beam_size=1, alpha=0.0, max_len_ratio=1.5)
    )
    assert any(ends_with_eos(h) for h in greedy_hyps)  # both endings are exercised
    assert any(not ends_with_eos(h) for h in greedy_hyps)
    for g, (b,) in zip(greedy_hyps, beam_hyps, strict=True):
        assert b.tokens == g.tokens
        assert b.log_prob == pytest.approx(g.log_prob, abs=1e-5)
        assert g.score == g.log_prob
        torch.testing.assert_close(b.attn, g.attn)
        torch.testing.assert_close(b.context, g.context)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_batched_equals_alone(decoder, alpha):
    model = tiny_model(decoder)
    src, src_lens = random_src(SRC_LENS)
    cfg = DecodeConfig(beam_size=4, alpha=alpha, n_best=2, max_len_ratio=1.0)
    batched = beam_search(model, src, src_lens, cfg)
    for b, n in enumerate(SRC_LENS):
        (alone,) = beam_search(model, src[b : b + 1, :n], src_lens[b : b + 1], cfg)
        assert batched[b][0].tokens == alone[0].tokens
        assert batched[b][0].score == pytest.approx(alone[0].score, abs=1e-5)
        assert [h.tokens for h in batched[b]] == [h.tokens for h in alone]


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_scores_match_teacher_forcing(decoder):
    model = tiny_model(decoder)
    src, src_lens = random_src(SRC_LENS)
    cfg = DecodeConfig(beam_size=4, alpha=1.0, beta=0.2, n_best=3, max_len_ratio=1.0)
    for b, hyps in enumerate(beam_search(model, src, src_lens, cfg)):
        for hyp in hyps:
            log_prob, attn = teacher_forced(model, src[b], SRC_LENS[b], hyp)
            assert hyp.log_prob == pytest.approx(log_prob, abs=1e-4)
            torch.testing.assert_close(hyp.attn, attn, atol=1e-5, rtol=1e-4)
            assert hyp.score == pytest.approx(
                gnmt_score(hyp.log_prob, hyp.attn, 1.0, 0.2), abs=1e-5
            )


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_nbest_sorted_and_complete(alpha):
    model = tiny_model()
    src, src_lens = random_src(SRC_LENS, seed=1)
    cfg = DecodeConfig(beam_size=4, alpha=alpha, n_best=3, max_len_ratio=1.0)
    for hyps in beam_search(model, src, src_lens, cfg):
        assert len(hyps) == 3
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 3


@pytest.mark.parametrize(
    ("decoder", "attention"), [("luong", "bahdanau"), ("bahdanau", "multihead")]
)
def test_attention_shapes(decoder, attention):
    model = tiny_model(decoder, attention)
    src, src_lens = random_src(SRC_LENS)
    cfg = DecodeConfig(beam_size=3, n_best=2, max_len_ratio=1.0)
    for n, hyps in zip(SRC_LENS, beam_search(model, src, src_lens, cfg), strict=True):
        for hyp in hyps:
            steps = len(hyp.tokens) + int(ends_with_eos(hyp))
            assert hyp.attn.shape == (steps, n)
            assert hyp.context.shape == (steps, 32)
            torch.testing.assert_close(hyp.attn.sum(-1), torch.ones(steps))
            if attention == "multihead":
                assert hyp.head_attn.shape == (steps, 2, n)
            else:
                assert hyp.head_attn is None


def test_min_len():
    model = tiny_model()
    src, src_lens = random_src(SRC_LENS)
    free = beam_search(model, src, src_lens, DecodeConfig(beam_size=3, n_best=3))
    assert min(len(h.tokens) for hyps in free for h in hyps) < 3
    cfg = DecodeConfig(beam_size=3, n_best=3, min_len=3)
    for hyps in beam_search(model, src, src_lens, cfg):
        assert all(len(h.tokens) >= 3 for h in hyps)


# --------------------------------------------------------------- exhaustive search


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_exhaustive_search(monkeypatch, alpha):
    """With a beam wider than every step's candidate count, the n-best are the exact n-best.

    V=6 and at most 4 steps: the search can produce every sequence that ends with EOS within 4
    steps, and every 4-token sequence without EOS (forced ending at the maximum length).
    """
    vocab, limit, n_best = 6, 4, 5
    monkeypatch.setattr(
        beam, "max_output_lengths", lambda lens, ratio: torch.full_like(lens, limit)
    )
    model = tiny_model(vocab=vocab)
    src, src_lens = random_src([3, 5], vocab=vocab)
    words = [y for y in range(vocab) if y != EOS_ID]
    outputs = [list(p) + [EOS_ID] for n in range(limit) for p in itertools.product(words, repeat=n)]
    outputs += [list(p) for p in itertools.product(words, repeat=limit)]
    cfg = DecodeConfig(beam_size=len(words) ** (limit - 1) * vocab, alpha=alpha, n_best=n_best)
    found = beam_search(model, src, src_lens, cfg)
    for b, n in enumerate([3, 5]):
        tgt_in = torch.tensor([[BOS_ID] + o[:-1] + [PAD_ID] * (limit - len(o)) for o in outputs])
        tgt_out = torch.tensor([o + [PAD_ID] * (limit - len(o)) for o in outputs])
        with torch.no_grad():
            logits = model(
                src[b : b + 1, :n].expand(len(outputs), n),
                src_lens[b : b + 1].expand(len(outputs)),
                tgt_in,
            ).logits
        token_lp = logits.log_softmax(-1).gather(2, tgt_out[..., None])[..., 0]  # (M,T)
        lengths = torch.tensor([len(o) for o in outputs])
        padding = torch.arange(limit) >= lengths[:, None]  # outputs may hold PAD_ID itself
        log_probs = token_lp.masked_fill(padding, 0.0).sum(1)
        scores = log_probs / ((5 + lengths) / 6) ** alpha
        best = scores.topk(n_best).indices.tolist()
        assert [h.tokens + [EOS_ID] * ends_with_eos(h) for h in found[b]] == [
            outputs[i] for i in best
        ]
        assert [h.score for h in found[b]] == pytest.approx(scores[best].tolist(), abs=1e-4)


# --------------------------------------------------------------- oracle decoder

A, B = 4, 5  # the two words of the oracle's vocabulary {PAD, UNK, BOS, EOS, a, b}
ORACLE = {  # next-token probabilities given the previous token
    BOS_ID: {EOS_ID: 0.1, A: 0.5, B: 0.4},
    A: {EOS_ID: 0.3, A: 0.6, B: 0.1},
    B: {EOS_ID: 0.8, A: 0.1, B: 0.1},
}


class OracleDecoder:
    """Logits log p(y | y_prev) from ``ORACLE``; uniform attention; counts its steps."""

    def __init__(self) -> None:
        self.table = torch.full((6, 6), -math.inf)
        self.table[:, [EOS_ID, A, B]] = math.log(1 / 3)  # after EOS (empty slots) and others
        for prev, probs in ORACLE.items():
            for token, p in probs.items():
                self.table[prev, token] = math.log(p)
        self.steps = 0

    def init_state(self, mask: torch.Tensor) -> DecoderState:
        batch, length = mask.shape
        return DecoderState(
            torch.zeros(batch, 1, 1),
            None,
            None,
            torch.zeros(batch, length, 1),
            torch.zeros(batch, length, 2),
            mask,
        )

    def step(self, y_prev, state, enc=None) -> StepOutput:
        self.steps += 1
        attn = state.mask.float() / state.mask.sum(1, keepdim=True)  # (B,S): per sentence
        attn = attn.repeat_interleave(len(y_prev) // len(attn), 0)  # (N,S): per row
        return StepOutput(self.table[y_prev], state, attn, torch.zeros(len(y_prev), 2), None)


class OracleModel:
    def __init__(self) -> None:
        self.decoder = OracleDecoder()

    def encode(self, src, src_lens):
        return src != PAD_ID


def oracle_search(cfg: DecodeConfig) -> tuple[list[list[Hypothesis]], int]:
    model = OracleModel()
    src, src_lens = random_src([1, 3], vocab=6)
    return beam_search(model, src, src_lens, cfg), model.decoder.steps


def summary(hyps: list[Hypothesis]) -> list[tuple[list[int], int, float]]:
    return [(h.tokens, h.attn.size(0), round(math.exp(h.log_prob), 6)) for h in hyps]


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_oracle_beams(alpha):
    """K=2. Step 0: a .5, b .4 live; EOS .1 ranks third, so it is not retired.
    Step 1: bEOS .32 retires; aa .30 and ab .05 fill the slots (aEOS .15 ranks third).
    Step 2: aaa .18, aaEOS .09 retires: two finished, done. Greedy would loop a a a ...
    """
    (first, second), steps = oracle_search(DecodeConfig(beam_size=2, n_best=2, alpha=alpha))
    assert steps == 3
    for hyps in (first, second):
        assert summary(hyps) == [([B], 2, 0.32), ([A, A], 3, 0.09)]
        assert [h.score for h in hyps] == pytest.approx(
            [math.log(0.32) / (7 / 6) ** alpha, math.log(0.09) / (8 / 6) ** alpha]
        )
    torch.testing.assert_close(second[0].attn, torch.full((2, 3), 1 / 3))


@pytest.mark.parametrize(("alpha", "expected_steps"), [(0.0, 2), (1.0, 3)])
def test_oracle_early_stop(alpha, expected_steps):
    """n_best=1, alpha=0: after step 1 the best live aa .30 cannot beat the finished b .32."""
    results, steps = oracle_search(DecodeConfig(beam_size=2, n_best=1, alpha=alpha))
    assert steps == expected_steps
    assert [summary(hyps) for hyps in results] == [[([B], 2, 0.32)]] * 2


def test_oracle_forced_ending(monkeypatch):
    """At the maximum length (2) the top K retire; aa ends without EOS and its probability."""
    monkeypatch.setattr(beam, "max_output_lengths", lambda lens, ratio: torch.full_like(lens, 2))
    results, steps = oracle_search(DecodeConfig(beam_size=2, n_best=2, alpha=0.0))
    assert steps == 2
    assert [summary(hyps) for hyps in results] == [[([B], 2, 0.32), ([A, A], 2, 0.3)]] * 2


def test_oracle_min_len():
    """min_len=2 forbids EOS at steps 0 and 1: aaEOS .09 and aaaEOS .054 finish."""
    results, _ = oracle_search(DecodeConfig(beam_size=2, n_best=2, alpha=0.0, min_len=2))
    assert [summary(hyps) for hyps in results] == [[([A, A], 3, 0.09), ([A, A, A], 4, 0.054)]] * 2


def test_oracle_coverage_penalty():
    """Uniform attention over S real tokens for T steps covers each with min(T/S, 1)."""
    results, _ = oracle_search(DecodeConfig(beam_size=2, n_best=2, alpha=0.0, beta=0.5))
    for hyps, length in zip(results, [1, 3], strict=True):
        for hyp in hyps:
            steps = hyp.attn.size(0)
            penalty = 0.5 * length * math.log(min(steps / length, 1.0))
            assert hyp.score == pytest.approx(hyp.log_prob + penalty, abs=1e-6)


def test_block_repeats_bans_exactly_the_tokens_that_redo_an_ngram():
    from nmt.inference.search import block_repeats

    prefix = torch.tensor([[5, 6, 7, 5], [4, 4, 4, 4]])
    for n, banned in (
        (1, [{5, 6, 7}, {4}]),
        (2, [{6}, {4}]),
        (3, [set(), {4}]),
        (5, [set(), set()]),
    ):
        log_probs = torch.zeros(2, 9)
        block_repeats(log_probs, prefix, n)
        assert [
            set(torch.nonzero(row == float("-inf")).flatten().tolist()) for row in log_probs
        ] == (banned), n


def repeated_ngrams(tokens: list[int], n: int) -> int:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) - len(set(grams))


@pytest.mark.parametrize("beam_size", [1, 4])
def test_no_repeat_ngram_removes_repeats_the_plain_search_makes(beam_size):
    model = tiny_model(vocab=8)
    src, src_lens = random_src([6, 9, 7, 5], vocab=8)
    plain = DecodeConfig(beam_size=beam_size, alpha=0.0, max_len_ratio=2.0, n_best=1)
    blocked = DecodeConfig(
        beam_size=beam_size, alpha=0.0, max_len_ratio=2.0, n_best=1, no_repeat_ngram=2
    )

    def search(cfg):
        if beam_size == 1:
            return [
                [h] for h in greedy(model, src, src_lens, cfg.max_len_ratio, cfg.no_repeat_ngram)
            ]
        return beam_search(model, src, src_lens, cfg)

    assert sum(repeated_ngrams(h[0].tokens, 2) for h in search(plain)) > 0
    assert all(repeated_ngrams(h.tokens, 2) == 0 for hyps in search(blocked) for h in hyps)


@pytest.mark.parametrize(
    "attention", ["bahdanau", "concat", "dot", "general", "scaled_dot", "cosine", "multihead"]
)
def test_the_rows_of_a_sentence_read_its_one_copy_of_the_memory(attention):
    model = tiny_model(attention=attention)
    src, lens = random_src([7, 3])
    state = model.decoder.init_state(model.encode(src, lens))
    rows = torch.arange(2).repeat_interleave(3)  # 3 beams per sentence, as beam search starts
    shared, copied = state.select(rows, None), state.select(rows, rows)
    assert shared.keys is state.keys and shared.values is state.values  # not copied
    tokens = torch.tensor([5, 6, 7, 8, 9, 10])
    for _ in range(3):  # the same steps as with a copy of the memory per row
        a = model.decoder.step(tokens, shared)
        b = model.decoder.step(tokens, copied)
        for name in ("logits", "attn", "context", "head_attn"):
            if getattr(b, name) is not None:
                torch.testing.assert_close(getattr(a, name), getattr(b, name), msg=name)
        within = torch.tensor([2, 0, 0, 4, 5, 3])  # back-pointers that stay in each sentence
        shared, copied = a.state.select(within, None), b.state.select(within, within)
        tokens = a.logits.argmax(-1)
