"""The output layer and its cross-entropy as one operation, a chunk of target positions at a time.

Under teacher forcing the (N,V) logits of a batch are the largest tensors of training: the logits,
their log-softmax and its gradient take 3 x 98 MB for 64 sentences of 48 pieces and an 8k
vocabulary, and set the process' peak memory. Here each chunk's logits live only while its loss
and its gradient are computed (``softmax - target``, in place), during the forward pass; backward
just scales the stored gradients. The matmuls are the same three as autograd's, padding rows are
skipped, and no (N,V) tensor outlives its chunk.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.config import PAD_ID

CHUNK_ELEMENTS = 1 << 23  # logits per chunk: 32 MB in float32


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, weight, bias, targets, label_smoothing, grad_mode):
        real = (targets != PAD_ID).nonzero().squeeze(1)
        hidden, gold = features.index_select(0, real), targets.index_select(0, real)
        vocab = weight.size(0)
        chunk = max(1, CHUNK_ELEMENTS // vocab)
        needs_grad = grad_mode and any(ctx.needs_input_grad[:3])  # no work for validation
        compute = torch.promote_types(features.dtype, torch.float32)
        loss = torch.zeros((), dtype=compute, device=features.device)
        grad_hidden = torch.empty_like(hidden, dtype=compute) if needs_grad else None
        grad_weight = torch.zeros_like(weight, dtype=compute) if needs_grad else None
        grad_bias = (
            torch.zeros(vocab, dtype=compute, device=weight.device)
            if needs_grad and bias is not None
            else None
        )
        for start in range(0, hidden.size(0), chunk):
            h, y = hidden[start : start + chunk], gold[start : start + chunk]
            logits = h @ weight.t() if bias is None else torch.addmm(bias, h, weight.t())
            log_probs = logits.to(compute).log_softmax(-1)  # (C,V), at least float32
            nll = -log_probs.gather(1, y.unsqueeze(1)).sum()
            if label_smoothing:
                smooth = -log_probs.sum() / vocab
                loss += (1.0 - label_smoothing) * nll + label_smoothing * smooth
            else:
                loss += nll
            if not needs_grad:
                continue
            # d loss / d logits = softmax - (1 - eps) * onehot(gold) - eps / V
            grad = log_probs.exp_()
            grad.scatter_add_(
                1, y.unsqueeze(1), grad.new_full((y.size(0), 1), label_smoothing - 1.0)
            )
            if label_smoothing:
                grad.sub_(label_smoothing / vocab)
            grad_hidden[start : start + chunk] = grad.to(weight.dtype) @ weight
            grad_weight += torch.mm(grad.t().to(h.dtype), h)  # bf16 under autocast, as autograd
            if grad_bias is not None:
                grad_bias += grad.sum(0)
        if needs_grad:
            ctx.save_for_backward(real, grad_hidden, grad_weight, grad_bias)
            ctx.features_shape, ctx.features_dtype = features.shape, features.dtype
            ctx.weight_dtype = weight.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        real, grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        grad_features = grad_hidden.new_zeros(ctx.features_shape)
        grad_features.index_copy_(0, real, grad_hidden * grad_loss)
        grad_bias = None if grad_bias is None else grad_bias * grad_loss
        return (
            grad_features.to(ctx.features_dtype),
            (grad_weight * grad_loss).to(ctx.weight_dtype),
            grad_bias,
            None,
            None,
            None,
        )


def linear_cross_entropy(
    features: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Summed cross-entropy of ``logits = features @ weight.T + bias`` over non-PAD targets.

    Equals ``F.cross_entropy(F.linear(features, weight, bias), targets, ignore_index=PAD_ID,
    label_smoothing=label_smoothing, reduction="sum")`` in value and gradients.

    Args:
        features: (..., H) pre-output vectors. weight: (V,H). bias: (V,) or None.
        targets: (...) long gold ids, PAD_ID where there is no token.
    """
    return _LinearCrossEntropy.apply(
        features.reshape(-1, features.size(-1)),
        weight,
        bias,
        targets.reshape(-1),
        float(label_smoothing),
        torch.is_grad_enabled(),
    )
