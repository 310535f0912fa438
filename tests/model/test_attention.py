"""Attention scorers and normalizers: distributions, exact zeros, hand references, grads."""

from __future__ import annotations

import math

import pytest
import torch

from nmt.config import ATTENTIONS, ModelConfig
from nmt.model.attention import (
    Attention,
    MultiHeadAttention,
    ScaledDotAttention,
    build_attention,
)
from nmt.model.normalizers import Normalizer, hard_attention, masked_softmax, sparsemax

NORMALIZERS = ("softmax", "sparsemax", "hard")
QUERY_DIM, KEY_DIM, ATTN_DIM, HEADS = 6, 4, 4, 2  # query and memory sizes differ on purpose
LENGTHS = (5, 3, 1)


def make_attention(kind: str, normalizer: str = "softmax", estimator: str = "straight_through"):
    torch.manual_seed(0)
    cfg = ModelConfig(
        attention=kind,
        normalizer=normalizer,
        hard_estimator=estimator,
        dec_hidden=QUERY_DIM,
        enc_hidden=KEY_DIM // 2,
        bidirectional=True,
        attn_dim=ATTN_DIM,
        heads=HEADS,
    )
    return build_attention(cfg)


def make_inputs(dtype: torch.dtype = torch.float32, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(len(LENGTHS), QUERY_DIM, generator=gen, dtype=dtype)
    memory = torch.randn(len(LENGTHS), max(LENGTHS), KEY_DIM, generator=gen, dtype=dtype)
    mask = torch.arange(max(LENGTHS)).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    return query, memory, mask


def run(att: Attention, query, memory, mask):
    keys, values = att.precompute(memory)
    return att(query, keys, values, mask)


# ---- an independent reference: Python loops over batch rows and source positions ----


def ref_normalize(scores: list[float], kind: str) -> list[float]:
    if kind == "softmax":
        top = max(scores)
        exps = [math.exp(z - top) for z in scores]
        return [e / sum(exps) for e in exps]
    if kind == "hard":
        best = max(range(len(scores)), key=lambda j: scores[j])
        return [1.0 if j == best else 0.0 for j in range(len(scores))]
    ordered = sorted(scores, reverse=True)
    k, total = 0, 0.0
    for i, z in enumerate(ordered, start=1):
        if 1 + i * z > total + z:
            k, total = i, total + z
    tau = (total - 1) / k
    return [max(z - tau, 0.0) for z in scores]


def ref_key(att: Attention, k: torch.Tensor) -> torch.Tensor:
    proj = getattr(att, "key_proj", None)
    return k if proj is None else proj.weight @ k


def ref_score(att: Attention, kind: str, q: torch.Tensor, k: torch.Tensor) -> float:
    if kind in ("bahdanau", "concat"):
        hidden = att.query_proj.weight @ q + att.query_proj.bias + att.key_proj.weight @ k
        return float(torch.dot(att.v.weight[0], torch.tanh(hidden)))
    k = ref_key(att, k)
    if kind in ("dot", "general"):
        return float(torch.dot(q, k))
    if kind == "scaled_dot":
        return float(torch.dot(q, k)) / math.sqrt(len(q))
    return float(att.scale * torch.dot(q, k) / (q.norm() * k.norm()))  # cosine


def ref_single(att, kind, norm, q, mem, n):
    weights = ref_normalize([ref_score(att, kind, q, mem[s]) for s in range(n)], norm)
    context = sum(w * mem[s] for s, w in enumerate(weights))
    return context, weights


def ref_multihead(att: MultiHeadAttention, norm: str, q, mem, n):
    size = ATTN_DIM // HEADS
    qp = att.query_proj.weight @ q
    kp = [att.key_proj.weight @ mem[s] for s in range(n)]
    vp = [att.value_proj.weight @ mem[s] for s in range(n)]
    heads, mean = [], [0.0] * n
    for h in range(HEADS):
        part = slice(h * size, (h + 1) * size)
        scores = [float(torch.dot(qp[part], kp[s][part])) / math.sqrt(size) for s in range(n)]
        weights = ref_normalize(scores, norm)
        heads.append(sum(w * vp[s][part] for s, w in enumerate(weights)))
        mean = [m + w / HEADS for m, w in zip(mean, weights, strict=True)]
    return att.out_proj.weight @ torch.cat(heads), mean


@pytest.mark.parametrize("norm", NORMALIZERS)
@pytest.mark.parametrize("kind", ATTENTIONS)
def test_matches_hand_computation_and_is_a_distribution(kind: str, norm: str) -> None:
    att = make_attention(kind, norm).eval()
    query, memory, mask = make_inputs()
    out = run(att, query, memory, mask)
    assert out.context.shape == (len(LENGTHS), KEY_DIM)
    assert out.attn.shape == mask.shape
    torch.testing.assert_close(out.attn.sum(-1), torch.ones(len(LENGTHS)))
    assert torch.all(out.attn[~mask] == 0)
    assert torch.all(out.attn >= 0)
    if kind == "multihead":
        assert out.head_attn.shape == (len(LENGTHS), HEADS, max(LENGTHS))
        assert torch.all(out.head_attn.masked_select(~mask.unsqueeze(1)) == 0)
    else:
        assert out.head_attn is None
    with torch.no_grad():
        for b, n in enumerate(LENGTHS):
            if kind == "multihead":
                context, weights = ref_multihead(att, norm, query[b], memory[b], n)
            else:
                context, weights = ref_single(att, kind, norm, query[b], memory[b], n)
            torch.testing.assert_close(out.attn[b, :n], torch.tensor(weights), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.context[b], context, atol=1e-5, rtol=1e-5)


ESTIMATED = [*((norm, "straight_through") for norm in NORMALIZERS), ("hard", "sample")]


@pytest.mark.parametrize("norm,estimator", ESTIMATED)
@pytest.mark.parametrize("kind", ATTENTIONS)
def test_gradients_reach_every_parameter(kind: str, norm: str, estimator: str) -> None:
    att = make_attention(kind, norm, estimator).train()
    query, memory, mask = make_inputs()
    query = (0.2 * query).requires_grad_(True)  # soft scores: sparsemax keeps >1 position
    out = run(att, query, memory, mask)
    gen = torch.Generator().manual_seed(3)
    loss = (out.context * torch.randn(out.context.shape, generator=gen)).sum()
    loss = loss + (out.attn * torch.randn(out.attn.shape, generator=gen)).sum()
    loss.backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    for name, param in att.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("norm", ["softmax", "sparsemax"])
@pytest.mark.parametrize("kind", ATTENTIONS)
def test_gradcheck_float64(kind: str, norm: str) -> None:
    att = make_attention(kind, norm).double()
    _, _, mask = make_inputs()
    query, memory, _ = make_inputs(torch.float64, seed=5)
    query.requires_grad_(True)
    memory.requires_grad_(True)

    def function(q, m):
        out = run(att, q, m, mask)
        return out.context, out.attn

    assert torch.autograd.gradcheck(function, (query, memory), eps=1e-6, atol=1e-5)


def test_dot_with_equal_sizes_has_no_parameters() -> None:
    cfg = ModelConfig(attention="dot", dec_hidden=8, enc_hidden=4, bidirectional=True)
    assert sum(p.numel() for p in build_attention(cfg).parameters()) == 0


def test_multihead_with_one_head_equals_scaled_dot() -> None:
    dim = 8
    norm = Normalizer("softmax", 0.7)
    single = ScaledDotAttention(dim, dim, norm)
    multi = MultiHeadAttention(dim, dim, dim, 1, norm)
    with torch.no_grad():
        for proj in (multi.query_proj, multi.key_proj, multi.value_proj, multi.out_proj):
            proj.weight.copy_(torch.eye(dim))
    torch.manual_seed(4)
    query, memory = torch.randn(3, dim), torch.randn(3, 5, dim)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    expected, got = run(single, query, memory, mask), run(multi, query, memory, mask)
    torch.testing.assert_close(got.context, expected.context)
    torch.testing.assert_close(got.attn, expected.attn)
    torch.testing.assert_close(got.head_attn[:, 0], expected.attn)


# ---- normalizers on their own ----

SCORES = torch.tensor([[0.3, 2.0, -1.0, 0.9, 5.0], [1.5, -0.5, 0.2, 4.0, 4.0]])
MASK = torch.tensor([[True, True, True, True, False], [True, True, True, False, False]])


def test_temperature_limits() -> None:
    sharp = Normalizer("softmax", 1e-3)(SCORES, MASK, False)
    torch.testing.assert_close(sharp, torch.tensor([[0.0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]))
    flat = Normalizer("softmax", 1e3)(SCORES, MASK, False)
    uniform = MASK.float() / MASK.sum(-1, keepdim=True)
    torch.testing.assert_close(flat, uniform, atol=1e-2, rtol=0)
    assert torch.all(flat[~MASK] == 0)


def test_sparsemax_closed_form_and_exact_zeros() -> None:
    scores = torch.tensor([[1.0, 0.8, 0.1, -1.0, 9.0], [3.0, 0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, True, False], [True] * 5])
    weights = sparsemax(scores, mask)
    expected = torch.tensor([[0.6, 0.4, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(weights, expected)
    assert torch.all(weights[expected == 0] == 0)  # exact, not just small
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


def test_sparsemax_gradcheck_away_from_ties() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.55, -0.4, 0.2], [0.3, 0.25, -0.2, 7.0, 1.0]])
    scores = scores.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: sparsemax(z, MASK), (scores,))


@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_sparsemax_in_bfloat16_is_computed_in_float32(scale) -> None:
    """Under bf16 autocast the scores arrive in bfloat16: the projection must still sum to 1
    (bf16 cumsums drift by up to 25 %) and large scores must keep a non-empty support."""
    gen = torch.Generator().manual_seed(0)
    scores = scale + torch.randn(64, 40, generator=gen)  # bf16 spacing at 256+ is 2: many ties
    mask = torch.arange(40) < torch.randint(1, 41, (64, 1), generator=gen)
    weights = sparsemax(scores.bfloat16(), mask)
    assert weights.dtype == torch.bfloat16
    reference = sparsemax(scores.bfloat16().float(), mask)
    torch.testing.assert_close(weights.float(), reference, atol=1e-2, rtol=0)
    torch.testing.assert_close(weights.float().sum(-1), torch.ones(64), atol=1e-2, rtol=0)
    assert torch.all(weights[~mask] == 0)


def test_hard_forward_is_one_hot_with_softmax_gradient() -> None:
    scores = SCORES.clone().requires_grad_(True)
    weights = hard_attention(scores, MASK, "straight_through", training=True)
    assert torch.equal(weights, torch.tensor([[0.0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]))
    probe = torch.randn(SCORES.shape, generator=torch.Generator().manual_seed(0))
    (weights * probe).sum().backward()
    soft_scores = SCORES.clone().requires_grad_(True)
    (masked_softmax(soft_scores, MASK) * probe).sum().backward()
    torch.testing.assert_close(scores.grad, soft_scores.grad)


def test_hard_sample_estimator_samples_in_training_and_argmaxes_in_eval() -> None:
    torch.manual_seed(0)
    scores = torch.tensor([[0.0, 0.5, 1.0, 9.0]]).expand(4000, -1)
    mask = torch.tensor([[True, True, True, False]]).expand(4000, -1)
    drawn = hard_attention(scores, mask, "sample", training=True)
    assert torch.all(drawn.sum(-1) == 1) and torch.all(drawn[:, 3] == 0)
    torch.testing.assert_close(drawn.mean(0), masked_softmax(scores, mask)[0], atol=0.03, rtol=0)
    greedy = hard_attention(scores, mask, "sample", training=False)
    assert torch.all(greedy[:, 2] == 1)


def test_unknown_normalizer_is_rejected() -> None:
    with pytest.raises(ValueError, match="normalizer"):
        Normalizer("entmax")


def test_additive_score_recomputing_backward_matches_plain_autograd():
    from nmt.model.attention import AdditiveScore

    gen = torch.Generator().manual_seed(3)
    # 2 query rows per sentence (beam search's rows share their sentence's keys)
    query = torch.randn(3, 2, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(3, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 2, 5, generator=gen, dtype=torch.float64)
    plain = (torch.tanh(query.unsqueeze(2) + keys.unsqueeze(1)) @ v * weights).sum()
    expected = torch.autograd.grad(plain, (query, keys, v))
    fused = (AdditiveScore.apply(query, keys, v) * weights).sum()
    torch.testing.assert_close(fused, plain)
    for got, want in zip(torch.autograd.grad(fused, (query, keys, v)), expected):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(AdditiveScore.apply, (query, keys, v))
