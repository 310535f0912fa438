"""Teacher forcing with weight gradients taken once per batch equals plain autograd's."""

from __future__ import annotations

import pytest
import torch
from conftest import random_src

from nmt.config import BOS_ID, EOS_ID, PAD_ID, ModelConfig
from nmt.model import build_model
from nmt.model.recurrence import StepLinear, TeacherForcedRNN

VOCAB = 30


def test_step_linear_gradients_equal_autograds_on_a_recurrence():
    torch.manual_seed(0)
    weight = torch.randn(6, 4, requires_grad=True)
    bias = torch.randn(6, requires_grad=True)
    inputs = [torch.randn(3, 4, requires_grad=True) for _ in range(5)]

    def run(linear):
        h, total = torch.zeros(3, 6), 0.0
        for x in inputs:
            h = torch.tanh(linear(x) + h.roll(1, dims=1))
            total = total + (h * h).sum()
        return total + (weight * weight).sum()  # the weight also used outside the steps

    expected = torch.autograd.grad(
        run(lambda x: torch.nn.functional.linear(x, weight, bias)), [weight, bias, *inputs]
    )
    step = StepLinear(weight, bias)
    got = torch.autograd.grad(run(step), [weight, bias, *inputs])
    assert step.uses == []  # every step's (input, gradient) was consumed
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def _model(rnn: str, decoder: str, layers: int = 1, feeding: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(
        rnn=rnn,
        emb_dim=8,
        enc_hidden=8,
        dec_hidden=12,
        dec_layers=layers,
        attn_dim=8,
        decoder=decoder,
        input_feeding=feeding,
        dropout=0.3,
    )
    return build_model(cfg, VOCAB, VOCAB)


def _batch():
    src, src_lens = random_src([7, 5, 3], VOCAB, seed=1)
    tgt, _ = random_src([6, 4, 5], VOCAB, seed=2)
    tgt_out = tgt
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), tgt[:, :-1]], dim=1)  # BOS y_1 ... y_{T-1}
    tgt_in = tgt_in.masked_fill(tgt_in == EOS_ID, PAD_ID)
    return src, src_lens, tgt_in, tgt_out


def _loss_and_grads(model, batch, seed=0):
    model.zero_grad()
    torch.manual_seed(seed)  # the same dropout masks on both paths
    loss = model.loss(*batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    "rnn, decoder, layers, feeding",
    [
        ("gru", "luong", 1, True),
        ("lstm", "luong", 1, False),
        ("gru", "bahdanau", 2, True),
        ("lstm", "bahdanau", 2, True),
    ],
)
@pytest.mark.parametrize("training", [False, True])
def test_teacher_forcing_gradients_equal_the_step_by_step_rnns(
    rnn, decoder, layers, feeding, training, monkeypatch
):
    model = _model(rnn, decoder, layers, feeding).train(training)
    batch = _batch()
    loss, grads = _loss_and_grads(model, batch)
    monkeypatch.setattr("nmt.model.decoder.TeacherForcedRNN", lambda rnn, embedded: None)
    reference_loss, reference = _loss_and_grads(model, batch)  # nn.GRU/LSTM one step at a time
    torch.testing.assert_close(loss, reference_loss, rtol=1e-5, atol=1e-5)
    assert grads.keys() == reference.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-6, msg=name)


def test_bf16_autocast_gradients_are_close_to_float32():
    model = _model("gru", "luong").eval()
    batch = _batch()
    _, exact = _loss_and_grads(model, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, autocast = _loss_and_grads(model, batch)
    for name, grad in autocast.items():
        assert grad.dtype == torch.float32
        scale = exact[name].abs().max().clamp_min(1e-3)
        assert (grad - exact[name]).abs().max() <= 0.05 * scale, name


def test_without_gradients_the_decoder_steps_its_own_rnn():
    model = _model("gru", "luong").eval()
    with torch.no_grad():
        loss = model.loss(*_batch()).loss
    assert torch.isfinite(loss)
    embedded = torch.zeros(2, 3, 8)
    rnn = TeacherForcedRNN(model.decoder.rnn, embedded)
    assert len(rnn.embedded_gates) == 3 and rnn.rest is not None  # the input feed's columns
