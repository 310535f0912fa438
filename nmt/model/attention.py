"""The attention scorer family: score a decoder query against every source position.

All scorers share one contract, the pure core of the Annotated Transformer's ``attention()``:

    attention(query (N,Hq), keys (B,S,K), values (B,S,D), mask (B,S)) -> (context (N,D), attn (N,S))

with N = B*g: the query holds g consecutive rows per sentence (beam search's K hypotheses, or
g = 1), which all read their sentence's one copy of the keys and values. Beam search so never
copies the memory K times, nor reorders it when hypotheses move among a sentence's rows.

Any projection of the encoder memory (Bahdanau's ``U h_j``, Luong general's ``W h_j``,
multihead's ``K``/``V``) is done once per sentence by ``precompute(memory) -> (keys, values)``,
which the decoder calls in ``init_state`` and carries in its state: nothing is cached on
``self``, so a module holds only its parameters and beam search can reorder the precomputed keys
like any other state.

Shapes: B batch, g query rows per sentence, N = B*g, S source length, Hq query (decoder hidden)
size, D memory size, A attention size, h heads. ``mask`` is True on real source tokens.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from nmt.config import ModelConfig
from nmt.model.normalizers import Normalizer


class AttentionOutput(NamedTuple):
    """What one attention call returns.

    Attributes:
        context: (B,D) the weighted sum of the values.
        attn: (B,S) weights over source positions (for multihead: the mean over heads).
        head_attn: (B,h,S) per-head weights for multihead, else None.
    """

    context: Tensor
    attn: Tensor
    head_attn: Tensor | None


def dot_scores(query: Tensor, keys: Tensor) -> Tensor:
    """``q^T k`` for query (..., g, d) against keys (..., S, d) -> (..., g, S)."""
    return query @ keys.transpose(-1, -2)


class Attention(nn.Module):
    """Base scorer: ``a = normalize(score(q, k) / tau)`` over real positions, ``c = sum_j a_j v_j``.

    Subclasses define ``score`` (and ``precompute`` when the memory needs a projection).
    """

    def __init__(self, normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer

    def precompute(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sentence keys (B,S,K) and values (B,S,D) from memory (B,S,D); identity here."""
        return memory, memory

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Unnormalized scores (B,g,S) of query (B,g,Hq) against keys (B,S,K)."""
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """Attend: query (N,Hq), keys (B,S,K), values (B,S,D), mask (B,S) -> AttentionOutput."""
        batch, rows = keys.size(0), query.size(0)
        grouped = query.view(batch, rows // batch, -1)  # (B,g,Hq)
        attn = self.normalizer(self.score(grouped, keys), mask.unsqueeze(1), self.training)
        context = torch.bmm(attn, values).view(rows, -1)  # (B,g,S) x (B,S,D) -> (N,D)
        return AttentionOutput(context, attn.view(rows, -1), None)


class AdditiveScore(torch.autograd.Function):
    """``v^T tanh(q + k_j)`` for every j, recomputing the tanh in backward instead of saving it.

    Autograd would keep the (B,S,A) tanh of every decoding step alive until backward: for a
    64-sentence batch of 50-piece sentences and A=512 that is about 6.5 MB a step, over 300 MB a
    batch, the largest activation of the peer-shape model. Recomputing it costs one add and one
    tanh per step in backward; the keys it needs are kept anyway (they are the attention state).
    """

    @staticmethod
    def forward(ctx, query: Tensor, keys: Tensor, v: Tensor) -> Tensor:
        """query (B,g,A) projected, keys (B,S,A) projected, v (A,) -> scores (B,g,S)."""
        ctx.save_for_backward(query, keys, v)
        # in place: (B,g,S,A) is the big one
        return (query.unsqueeze(2) + keys.unsqueeze(1)).tanh_() @ v

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        query, keys, v = ctx.saved_tensors
        hidden = torch.tanh(query.unsqueeze(2) + keys.unsqueeze(1))  # (B,g,S,A), recomputed
        grad_v = torch.einsum("bgs,bgsa->a", grad, hidden)
        grad_pre = grad.unsqueeze(-1) * v * (1 - hidden * hidden)  # (B,g,S,A)
        # under autocast the inputs may be bfloat16 while v is float32: match each input's dtype
        grad_query = grad_pre.sum(2)
        # training has one row per sentence (g = 1): a view, not a (B,S,A) sum, every step
        grad_keys = grad_pre.squeeze(1) if grad_pre.size(1) == 1 else grad_pre.sum(1)
        return grad_query.to(query.dtype), grad_keys.to(keys.dtype), grad_v.to(v.dtype)


class BahdanauAttention(Attention):
    """Additive (MLP) attention, Bahdanau et al. (2015).

    ``score(q, k_j) = v^T tanh(W q + U k_j + b)``, W: (A,Hq), U: (A,D), v: (A,).
    ``U k_j`` is the precomputed key, so a step costs one (B,Hq)x(Hq,A) matmul plus the tanh.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int, normalizer: Normalizer) -> None:
        super().__init__(normalizer)
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=True)
        self.key_proj = nn.Linear(key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def precompute(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        return self.key_proj(memory), memory  # keys (B,S,A)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return AdditiveScore.apply(self.query_proj(query), keys, self.v.weight[0])  # (B,g,S)


class LuongConcatAttention(BahdanauAttention):
    """Luong et al. (2015) ``concat``: ``score(q, k_j) = v^T tanh(W_a [q; k_j])``.

    Splitting ``W_a = [W_q, W_k]`` gives ``v^T tanh(W_q q + W_k k_j)``: the additive form, so it
    reuses Bahdanau's computation with ``W_k k_j`` projected once per sentence.
    """


class LuongDotAttention(Attention):
    """Luong ``dot``: ``score(q, k_j) = q^T k_j``.

    The dot product needs ``Hq == D``; when they differ the memory is projected to the query size
    by a bias-free Linear, ``k_j = P h_j`` (once per sentence). With equal sizes there are no
    parameters at all.
    """

    def __init__(self, query_dim: int, key_dim: int, normalizer: Normalizer) -> None:
        super().__init__(normalizer)
        needs_proj = query_dim != key_dim
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False) if needs_proj else None

    def precompute(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        keys = memory if self.key_proj is None else self.key_proj(memory)  # (B,S,Hq)
        return keys, memory

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return dot_scores(query, keys)


class LuongGeneralAttention(LuongDotAttention):
    """Luong ``general`` (bilinear): ``score(q, k_j) = q^T W_a k_j``, W_a: (Hq,D).

    ``W_a k_j`` is precomputed once per sentence; a step is then a plain dot product.
    """

    def __init__(self, query_dim: int, key_dim: int, normalizer: Normalizer) -> None:
        super().__init__(query_dim, key_dim, normalizer)
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False)


class ScaledDotAttention(LuongDotAttention):
    """Scaled dot product (Vaswani et al., 2017): ``score(q, k_j) = q^T k_j / sqrt(d)``, d = Hq.

    Dividing by ``sqrt(d)`` keeps the score variance near 1 for unit-variance vectors, so the
    softmax does not saturate as the hidden size grows. Keys are projected as in ``dot``.
    """

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return dot_scores(query, keys) / math.sqrt(query.size(-1))


class CosineAttention(LuongDotAttention):
    """Cosine similarity: ``score(q, k_j) = g * q^T k_j / (|q| |k_j|)``, g a learned scalar.

    Cosines lie in [-1, 1], too flat for a softmax on their own, so they are multiplied by a
    learned scale g initialized to ``sqrt(d)``: for unit-variance vectors that matches the scaled
    dot product's range at the start of training. Keys are projected as in ``dot``.
    """

    def __init__(self, query_dim: int, key_dim: int, normalizer: Normalizer) -> None:
        super().__init__(query_dim, key_dim, normalizer)
        self.scale = nn.Parameter(torch.tensor(math.sqrt(query_dim)))

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        unit_q = nn.functional.normalize(query, dim=-1, eps=1e-8)
        unit_k = nn.functional.normalize(keys, dim=-1, eps=1e-8)
        return self.scale * dot_scores(unit_q, unit_k)


class MultiHeadAttention(Attention):
    """Multi-head attention (Vaswani et al., 2017) over the encoder memory.

    ``head_i = attention(q W_Q^i, K W_K^i, V W_V^i)`` with the scaled dot scorer in each subspace of
    size ``d/h``; ``context = Concat(head_1, ..., head_h) W^O``, W^O: (d, D), so the context has the
    memory's size whatever ``d`` is. The alignment ``attn`` is the mean of the per-head weights,
    kept in ``head_attn`` (B,h,S). With one head and identity projections it is exactly
    ``ScaledDotAttention``. ``K`` and ``V`` are precomputed once per sentence.
    """

    def __init__(
        self, query_dim: int, key_dim: int, model_dim: int, heads: int, normalizer: Normalizer
    ) -> None:
        super().__init__(normalizer)
        if model_dim % heads:
            raise ValueError(f"attention size {model_dim} is not divisible by {heads} heads")
        self.heads = heads
        self.query_proj = nn.Linear(query_dim, model_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, model_dim, bias=False)
        self.value_proj = nn.Linear(key_dim, model_dim, bias=False)
        self.out_proj = nn.Linear(model_dim, key_dim, bias=False)

    def precompute(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        return self.key_proj(memory), self.value_proj(memory)  # (B,S,d) each

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        batch, src_len, model_dim = keys.shape
        rows, size = query.size(0), model_dim // self.heads
        split = (batch, src_len, self.heads, size)
        q = self.query_proj(query).view(batch, -1, self.heads, size).transpose(1, 2)  # (B,h,g,.)
        k = keys.reshape(split).transpose(1, 2)  # (B,h,S,d/h)
        v = values.reshape(split).transpose(1, 2)  # (B,h,S,d/h)
        scores = dot_scores(q, k) / math.sqrt(size)  # (B,h,g,S)
        head_attn = self.normalizer(scores, mask[:, None, None], self.training)
        heads = (head_attn @ v).transpose(1, 2).reshape(rows, model_dim)  # (B,g,h,d/h) -> (N,d)
        head_attn = head_attn.transpose(1, 2).reshape(rows, self.heads, src_len)  # (N,h,S)
        return AttentionOutput(self.out_proj(heads), head_attn.mean(1), head_attn)


def build_attention(cfg: ModelConfig) -> Attention:
    """The scorer named by ``cfg.attention``; queries are decoder states, keys the memory."""
    query_dim = cfg.dec_hidden
    key_dim = cfg.enc_hidden * (2 if cfg.bidirectional else 1)
    attn_dim = cfg.attn_dim or cfg.dec_hidden
    norm = Normalizer(cfg.normalizer, cfg.temperature, cfg.hard_estimator)
    if cfg.attention == "bahdanau":
        return BahdanauAttention(query_dim, key_dim, attn_dim, norm)
    if cfg.attention == "concat":
        return LuongConcatAttention(query_dim, key_dim, attn_dim, norm)
    if cfg.attention == "multihead":
        return MultiHeadAttention(query_dim, key_dim, attn_dim, cfg.heads, norm)
    simple = {
        "dot": LuongDotAttention,
        "general": LuongGeneralAttention,
        "scaled_dot": ScaledDotAttention,
        "cosine": CosineAttention,
    }
    return simple[cfg.attention](query_dim, key_dim, norm)
