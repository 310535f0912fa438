"""int8 decoding (``decode.precision=int8``): the decoder's matmuls in 8-bit integers.

Weights are quantized once, symmetrically per output row (``absmax / 127``); activations per
row at every call (dynamic quantization, so no calibration data is needed). ``torch._int_mm``
multiplies int8 by int8 into int32 (oneDNN: VNNI or AMX on x86), one multiply rescales.
This is the recipe of ``torch.ao.quantization.quantize_dynamic``, which torch 2.13 deprecates
(pytorch/ao#2259); building it on ``_int_mm``, a core op, rather than on torchao spares a
dependency and keeps the decoder's own step (its GRU/LSTM cell, written out below) in charge.

What is quantized: every ``nn.Linear`` of the decoder (output layer, input-feeding combine or
deep output, the attention's query projection) and the decoder RNN. The encoder, which runs
once per sentence, and the attention weights themselves stay float32, as does the additive
scorer's ``v`` (read as a vector, not called).
"""

from __future__ import annotations

import copy
import weakref

import torch
from torch import Tensor, nn

from nmt.inference.ensemble import Ensemble
from nmt.model import Seq2Seq
from nmt.model.recurrence import gru_update, lstm_update

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 per row: ``weight ~= q * scale[:, None]``, q in [-127, 127]."""
    scale = weight.detach().float().abs().amax(dim=1).clamp_min(1e-12) / 127
    q = torch.round(weight.detach().float() / scale[:, None]).clamp_(-127, 127)
    return q.to(torch.int8), scale


def int8_matmul(x: Tensor, weight_t: Tensor, weight_scale: Tensor) -> Tensor:
    """``x @ W^T`` for x (M,K) float and W given as its int8 transpose (K,N) and row scales."""
    q, x_scale = quantize_rows(x)
    out = torch._int_mm(q, weight_t).float()
    return out.mul_(x_scale[:, None]).mul_(weight_scale)  # in place: (M,N) is the big one


class Int8Linear(nn.Module):
    """An ``nn.Linear`` with int8 weights; inputs (..., K) of any leading shape.

    Built from quantized parts: ``weight_t`` (K,N) int8, ``scale`` (N,), ``bias`` (N,) or None.
    """

    def __init__(self, weight_t: Tensor, scale: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        self.register_buffer("weight_t", weight_t)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", bias)

    @classmethod
    def quantize(cls, weight: Tensor, bias: Tensor | None) -> Int8Linear:
        q, scale = quantize_rows(weight)
        return cls(q.t(), scale, None if bias is None else bias.detach().float().clone())

    @classmethod
    def of(cls, linear: nn.Linear) -> Int8Linear:
        return cls.quantize(linear.weight, linear.bias)

    def rows(self, index: Tensor) -> Int8Linear:
        """The layer of output rows ``index`` only (already quantized: no new rounding)."""
        bias = None if self.bias is None else self.bias[index]
        return Int8Linear(self.weight_t[:, index], self.scale[index], bias)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.size(-1)).float()
        out = int8_matmul(flat, self.weight_t, self.scale)
        if self.bias is not None:
            out += self.bias
        return out.reshape(*x.shape[:-1], out.size(-1))


class Int8RNN(nn.Module):
    """One step of a stacked ``nn.GRU``/``nn.LSTM`` (batch first, one direction) on int8
    matmuls, with its call signature: ``(x (B,1,I), h (L,B,H) or (h, c)) -> (out, state)``.
    The gates follow PyTorch's equations and weight layout (r z n; i f g o)."""

    def __init__(self, rnn: nn.GRU | nn.LSTM) -> None:
        super().__init__()
        if rnn.bidirectional or not rnn.batch_first or getattr(rnn, "proj_size", 0):
            raise ValueError("Int8RNN decodes one direction, batch first, without projections")
        self.lstm = isinstance(rnn, nn.LSTM)
        layers = range(rnn.num_layers)
        self.inputs = nn.ModuleList(
            Int8Linear.quantize(
                getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"bias_ih_l{k}", None)
            )
            for k in layers
        )
        self.hiddens = nn.ModuleList(
            Int8Linear.quantize(
                getattr(rnn, f"weight_hh_l{k}"), getattr(rnn, f"bias_hh_l{k}", None)
            )
            for k in layers
        )

    def forward(self, x: Tensor, state: Tensor | tuple[Tensor, Tensor]):
        if x.size(1) != 1:
            raise ValueError("Int8RNN runs one step at a time (x of shape (B,1,I))")
        hidden, cell = state if self.lstm else (state, None)
        top, hiddens, cells = x[:, 0].float(), [], []
        for k, (inputs, recurrent) in enumerate(zip(self.inputs, self.hiddens)):
            gates_x, gates_h = inputs(top), recurrent(hidden[k])
            if self.lstm:
                top, c = lstm_update(gates_x + gates_h, cell[k])
                cells.append(c)
            else:
                top = gru_update(gates_x, gates_h, hidden[k])
            hiddens.append(top)
        new_hidden = torch.stack(hiddens)
        return top.unsqueeze(1), (new_hidden, torch.stack(cells)) if self.lstm else new_hidden


def quantize_decoder(model: Seq2Seq) -> Seq2Seq:
    """A copy of ``model`` whose decoder runs on int8 matmuls (the original is untouched)."""
    quantized = copy.deepcopy(model).eval()
    decoder = quantized.decoder
    for name, module in list(decoder.named_modules()):
        if isinstance(module, nn.Linear) and not name.endswith(".v"):
            parent, _, attribute = name.rpartition(".")
            owner = decoder.get_submodule(parent) if parent else decoder
            setattr(owner, attribute, Int8Linear.of(module))
    decoder.rnn = Int8RNN(decoder.rnn)
    return quantized


def int8_model(model: Seq2Seq | Ensemble) -> Seq2Seq | Ensemble:
    """``quantize_decoder(model)`` (of each member of an ensemble), built once per set of
    weights: cached while the parameters keep their versions (an optimizer step or
    ``load_state_dict`` bumps them), so validation during training never decodes stale ones."""
    if isinstance(model, Ensemble):
        return Ensemble([int8_model(member) for member in model.models]).eval()
    versions = tuple(parameter._version for parameter in model.parameters())
    cached = _CACHE.get(model)
    if cached is None or cached[0] != versions:
        cached = _CACHE[model] = (versions, quantize_decoder(model))
    return cached[1]
