"""Attention normalizers: turn scores ``(..., S)`` into weights over the real source positions.

Every normalizer divides the scores by a temperature ``tau`` and returns weights that sum to 1 over
the positions where ``mask`` is True and are *exactly* 0 on padding. A row must hold at least one
real position; a source sentence always does (it ends with EOS), so no guard is spent on empty rows.

Shapes: scores ``(..., S)`` (``(B,S)`` for one head, ``(B,h,S)`` for multihead); mask broadcasts
to them, True = real token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

NORMALIZERS = ("softmax", "sparsemax", "hard")
ESTIMATORS = ("straight_through", "sample")


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the real positions: ``a_j = exp(z_j) / sum_{i real} exp(z_i)``.

    Padding is filled with -inf before the softmax (so it takes no mass) and with 0 after it (so
    it is an exact 0 rather than an underflow).
    """
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return weights.masked_fill(~mask, 0.0)


def sparsemax(scores: Tensor, mask: Tensor) -> Tensor:
    """Sparsemax (Martins & Astudillo, 2016): the Euclidean projection of z onto the simplex.

    ``sparsemax(z)_j = max(z_j - tau(z), 0)`` with ``tau(z) = (sum_{j<=k(z)} z_(j) - 1) / k(z)``,
    where ``z_(1) >= z_(2) >= ...`` are the sorted scores and ``k(z)`` is the largest ``k`` with
    ``1 + k z_(k) > sum_{j<=k} z_(j)``. Unlike softmax it can give exact zeros.

    Written with sort, cumsum and gather so autograd yields the exact Jacobian
    ``d p_i / d z_j = delta_ij - 1/|supp|`` on the support (0 elsewhere): no custom backward.
    Padding is sorted last (-inf) and excluded from the support by the real-token count.
    Half-precision scores are computed in float32: in bfloat16 the cumulative sums drift (rows
    summing to 0.75-1.25) and at scores of 256 and more the support test fails for every k.
    """
    dtype = scores.dtype
    if dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    size = scores.size(-1)
    mask = mask.expand_as(scores)
    ranks = torch.arange(1, size + 1, device=scores.device, dtype=scores.dtype)  # (S,)
    z_sorted, _ = torch.sort(scores.masked_fill(~mask, float("-inf")), dim=-1, descending=True)
    real = ranks <= mask.sum(-1, keepdim=True)  # real scores sort first: (..., S)
    cumsum = z_sorted.masked_fill(~real, 0.0).cumsum(-1)
    support = (1 + ranks * z_sorted > cumsum) & real
    k = support.sum(-1, keepdim=True)  # >= 1: the top score is always in the support
    tau = (cumsum.gather(-1, k - 1) - 1) / k.to(scores.dtype)
    return torch.clamp(scores - tau, min=0.0).masked_fill(~mask, 0.0).to(dtype)


def hard_attention(scores: Tensor, mask: Tensor, estimator: str, training: bool) -> Tensor:
    """One-hot weights at one position, with the softmax's gradient (straight-through).

    Forward is ``one_hot(argmax softmax(z))``; with ``estimator="sample"`` in training mode the
    position is drawn from the softmax instead (argmax in eval mode). The backward pass uses the
    softmax's gradient: ``y = y_hard + (y_soft - y_soft.detach())``, which equals ``y_hard``
    exactly in the forward pass (``x - x == 0``) yet carries ``d y_soft`` backward.
    """
    soft = masked_softmax(scores, mask)
    if estimator == "sample" and training:
        flat = soft.detach().reshape(-1, soft.size(-1))  # (N,S)
        index = torch.multinomial(flat, 1).view(*soft.shape[:-1], 1)
    else:
        index = soft.argmax(dim=-1, keepdim=True)
    hard = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return hard + (soft - soft.detach())


@dataclass(frozen=True)
class Normalizer:
    """Which normalizer, at which temperature: ``weights = normalizer(scores / tau)``.

    As ``tau -> 0`` softmax approaches the one-hot argmax; as ``tau -> inf`` it approaches the
    uniform distribution over the real positions. For ``hard`` the temperature only shapes the
    straight-through gradient.

    Attributes:
        kind: softmax | sparsemax | hard.
        temperature: tau > 0.
        estimator: straight_through | sample (hard only).
    """

    kind: str = "softmax"
    temperature: float = 1.0
    estimator: str = "straight_through"

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZERS:
            raise ValueError(f"unknown normalizer {self.kind!r}; choose from {NORMALIZERS}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose from {ESTIMATORS}")

    def __call__(self, scores: Tensor, mask: Tensor, training: bool) -> Tensor:
        """Normalize ``scores (..., S)`` over ``mask`` (broadcastable, True = real)."""
        scores = scores / self.temperature
        if self.kind == "softmax":
            return masked_softmax(scores, mask)
        if self.kind == "sparsemax":
            return sparsemax(scores, mask)
        return hard_attention(scores, mask, self.estimator, training)
