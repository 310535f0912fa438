"""int8 decoding: quantization error, the int8 RNN step against PyTorch's, and translations of a
trained model (where the margins are large) equal to float32's."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import random_src, tiny_model
from torch import nn

from nmt.config import DecodeConfig
from nmt.data.corpus import load_split
from nmt.inference.decoding import load_translator, translate_lines
from nmt.inference.int8 import Int8Linear, Int8RNN, int8_model, quantize_rows


def test_int8_weights_round_trip_within_half_a_step_per_row():
    weight = torch.randn(300, 70) * torch.logspace(-3, 1, 300)[:, None]  # rows of every scale
    q, scale = quantize_rows(weight)
    assert q.dtype == torch.int8 and int(q.abs().max()) == 127
    error = (q.float() * scale[:, None] - weight).abs()
    assert bool((error <= scale[:, None] / 2 + 1e-7).all())


def test_int8_linear_is_the_float_linear_within_the_quantization_error():
    torch.manual_seed(0)
    linear = nn.Linear(64, 40)
    x = torch.randn(3, 50, 64)
    got, expected = Int8Linear.of(linear)(x), linear(x)
    assert got.shape == expected.shape == (3, 50, 40)
    # x and w are each off by at most half a step (absmax / 254 per row): output j is off by
    # at most half x's step times |w_j|_1 plus half w_j's step times |x|_1 (x rounded, so plus
    # half a step per element)
    x_half, w_half = x.abs().amax(-1, keepdim=True) / 254, linear.weight.abs().amax(1) / 254
    bound = (
        x_half * linear.weight.abs().sum(1) + (x.abs().sum(-1, keepdim=True) + 64 * x_half) * w_half
    )
    assert bool(((got - expected).abs() <= bound + 1e-5).all())
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM])
def test_int8_rnn_step_follows_pytorch_rnn(kind):
    torch.manual_seed(1)
    rnn = kind(24, 32, num_layers=2, batch_first=True)
    x, hidden = torch.randn(5, 1, 24), torch.randn(2, 5, 32)
    state = (hidden, torch.randn(2, 5, 32)) if kind is nn.LSTM else hidden
    expected_top, expected_state = rnn(x, state)
    top, new_state = Int8RNN(rnn)(x, state)
    assert top.shape == expected_top.shape
    assert torch.allclose(top, expected_top, atol=0.03)
    for got, want in zip(
        new_state if kind is nn.LSTM else [new_state],
        expected_state if kind is nn.LSTM else [expected_state],
    ):
        assert torch.allclose(got, want, atol=0.03)
    assert not torch.equal(top, expected_top)  # it did run in int8


def test_int8_model_is_built_once_per_set_of_weights():
    model = tiny_model()
    first = int8_model(model)
    assert int8_model(model) is first
    assert model.decoder.out.weight.dtype == torch.float32  # the original is untouched
    assert isinstance(first.decoder.out, Int8Linear) and isinstance(first.decoder.rnn, Int8RNN)
    with torch.no_grad():
        model.decoder.out.weight.mul_(2)  # an optimizer step would bump the version too
    assert int8_model(model) is not first
    src, lens = random_src([7, 3, 5])
    assert torch.equal(model.encode(src, lens).memory, first.encode(src, lens).memory)


def test_int8_translations_of_a_trained_model_are_float32_ones(trained_run):
    translator = load_translator(str(trained_run))
    lines = load_split(translator.data, "test").src[:100]
    for beam in (1, 3):
        decode = replace(translator.decode, beam_size=beam, n_best=1)
        float32 = translate_lines(translator, lines, decode, 250)
        int8 = translate_lines(translator, lines, replace(decode, precision="int8"), 250)
        same = sum(f[0].tokens == q[0].tokens for f, q in zip(float32, int8))
        # where the tiny model is unsure (a long sentence, log-probability -12 over 29 pieces)
        # rounding may swap a piece: 93-100 % of sentences are the same, by the seed
        assert same >= 0.9 * len(lines), (beam, same)


def test_int8_is_cpu_decoding():
    with pytest.raises(ValueError, match="decode.precision"):
        DecodeConfig(precision="int4")
