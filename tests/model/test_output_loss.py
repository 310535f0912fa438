"""The fused output layer + cross-entropy against autograd through F.linear + F.cross_entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmt.config import PAD_ID, ModelConfig
from nmt.model import build_model
from nmt.model import output_loss as output_loss_module
from nmt.model.output_loss import linear_cross_entropy


def reference(features, weight, bias, targets, label_smoothing):
    logits = F.linear(features, weight, bias)
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=PAD_ID,
        label_smoothing=label_smoothing,
        reduction="sum",
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("with_bias", [True, False])
def test_value_and_gradients_equal_autograd_over_several_chunks(
    monkeypatch, label_smoothing, with_bias
):
    torch.manual_seed(0)
    vocab = 40
    monkeypatch.setattr(output_loss_module, "CHUNK_ELEMENTS", vocab * 7)  # chunks of 7 rows
    features = torch.randn(3, 11, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, 16, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(vocab, dtype=torch.float64, requires_grad=True) if with_bias else None
    targets = torch.randint(1, vocab, (3, 11))
    targets[0, 8:], targets[2, 3:] = PAD_ID, PAD_ID  # padding is skipped
    inputs = [t for t in (features, weight, bias) if t is not None]

    expected = reference(features, weight, bias, targets, label_smoothing)
    expected_grads = torch.autograd.grad(expected * 0.37, inputs)
    got = linear_cross_entropy(features, weight, bias, targets, label_smoothing)
    got_grads = torch.autograd.grad(got * 0.37, inputs)

    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    for mine, theirs in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)
    assert got_grads[0][2, 3:].abs().sum() == 0  # padding rows get no gradient


def test_gradcheck():
    torch.manual_seed(1)
    features = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(9, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([3, 1, PAD_ID, 8, 2, 5])
    assert torch.autograd.gradcheck(
        lambda f, w, b: linear_cross_entropy(f, w, b, targets, 0.1), (features, weight, bias)
    )


def test_without_grad_mode_no_gradient_is_computed(monkeypatch):
    """Validation calls it under no_grad: only the loss, no (V,H) gradient buffers."""
    torch.manual_seed(2)
    features, weight = torch.randn(8, 4), torch.randn(10, 4, requires_grad=True)
    targets = torch.randint(1, 10, (8,))
    allocated = []
    real_zeros_like = torch.zeros_like
    monkeypatch.setattr(
        torch, "zeros_like", lambda *a, **k: allocated.append(1) or real_zeros_like(*a, **k)
    )
    with torch.no_grad():
        loss = linear_cross_entropy(features, weight, None, targets)
    assert not allocated and not loss.requires_grad
    assert loss.item() == pytest.approx(reference(features, weight, None, targets, 0.0).item())


def test_bf16_autocast_stays_close_to_float32():
    torch.manual_seed(3)
    features = torch.randn(64, 32, requires_grad=True)
    weight = torch.randn(500, 32, requires_grad=True)
    targets = torch.randint(1, 500, (64,))
    exact = linear_cross_entropy(features, weight, None, targets, 0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = linear_cross_entropy(features, weight, None, targets, 0.1)
    assert fast.dtype == torch.float32
    assert fast.item() == pytest.approx(exact.item(), rel=2e-2)
    fast.backward()
    assert features.grad.dtype == torch.float32 and weight.grad.dtype == torch.float32


@pytest.mark.parametrize("tie", [False, True])
def test_model_loss_equals_cross_entropy_of_its_logits(tie):
    torch.manual_seed(4)
    cfg = ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=12, dropout=0.0, tie_embeddings=tie)
    model = build_model(cfg, 30, 30).double()
    src = torch.randint(4, 30, (3, 6))
    src_lens = torch.tensor([6, 4, 2])
    tgt_in = torch.randint(4, 30, (3, 5))
    tgt_out = torch.randint(4, 30, (3, 5))
    tgt_out[1, 3:] = PAD_ID
    logits = model(src, src_lens, tgt_in).logits
    expected = F.cross_entropy(
        logits.flatten(0, 1),
        tgt_out.flatten(),
        ignore_index=PAD_ID,
        reduction="sum",
        label_smoothing=0.1,
    )
    expected_grads = torch.autograd.grad(expected, list(model.parameters()))
    out = model.loss(src, src_lens, tgt_in, tgt_out, 0.1)
    got_grads = torch.autograd.grad(out.loss, list(model.parameters()))
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-12)
    for mine, theirs in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-12)
