"""The decoder's recurrence under teacher forcing, with each weight's gradient taken once a batch.

Teacher forcing runs the decoder one step at a time, and autograd then computes the gradient of
every step's weights as its own (out, B) x (B, in) product, an inner size of only B = 64 that
runs well below the matmul ceiling, and adds each into a weight-sized sum: T small matmuls and T
accumulations per weight and batch. As cuDNN's RNN backward does, ``StepLinear`` keeps every
step's input and output gradient instead, and computes the weight's gradient as one
(out, T*B) x (T*B, in) product once the last step's backward is done. The RNN's input weights
are split too: the embedding part is multiplied for all steps at once before the loop
(``input_projection``), so only the recurrent part of the input is left to the steps.

The gate equations are PyTorch's (``nn.GRU``: r z n; ``nn.LSTM``: i f g o) and shared with the
int8 decoder (``inference/int8.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gru_update(gates_x: Tensor, gates_h: Tensor, hidden: Tensor) -> Tensor:
    """One GRU step from its input and recurrent gate pre-activations (B,3H): the new state."""
    x_r, x_z, x_n = gates_x.chunk(3, dim=1)
    h_r, h_z, h_n = gates_h.chunk(3, dim=1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return n + z * (hidden - n)  # (1 - z) n + z h


def lstm_update(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step from its summed gate pre-activations (B,4H): (hidden, cell)."""
    i, f, g, o = gates.chunk(4, dim=1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell


class _Gathered(torch.autograd.Function):
    """The weight (and bias) as the steps see them; backward: one matmul over every step."""

    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor | None, uses: list):
        ctx.uses, ctx.has_bias, ctx.dtype = uses, bias is not None, weight.dtype
        ctx.set_materialize_grads(False)
        device = weight.device.type
        if torch.is_autocast_enabled(device):  # cast once per pass, not at every step
            weight = weight.to(torch.get_autocast_dtype(device))
        return weight.view_as(weight), None if bias is None else bias.view_as(bias)

    @staticmethod
    def backward(ctx, grad_weight: Tensor | None, grad_bias: Tensor | None):
        inputs = torch.cat([x for x, _ in ctx.uses])  # (T*B, in)
        grads = torch.cat([g for _, g in ctx.uses])  # (T*B, out), bf16 under autocast
        ctx.uses.clear()
        weight = grads.t().mm(inputs.to(grads.dtype)).to(ctx.dtype)
        bias = grads.sum(0, dtype=ctx.dtype) if ctx.has_bias else None
        if grad_weight is not None:  # the weight was also used outside the steps
            weight = weight + grad_weight
        if grad_bias is not None:
            bias = bias + grad_bias
        return weight, bias, None


class _StepLinear(torch.autograd.Function):
    """``x W^T + b`` for one step; backward gives x its gradient and files (x, grad) for later.
    Under autocast the matmul is autocast's (bf16 inputs), as ``F.linear``'s would be."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, uses: list):
        out = nn.functional.linear(x, weight, bias)
        ctx.save_for_backward(x.to(out.dtype), weight)
        ctx.uses, ctx.x_dtype = uses, x.dtype
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        ctx.uses.append((x, grad))
        return grad.mm(weight.to(grad.dtype)).to(ctx.x_dtype), None, None, None


class StepLinear:
    """One teacher-forced pass's use of a weight (and bias) at every step of the recurrence.

    Build it once per pass, call it at each step like ``F.linear(x, weight, bias)``. Each
    step's backward files its input and output gradient; the gradient of ``weight`` and
    ``bias`` is summed over all steps in one matmul when the last step's backward is done.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None) -> None:
        self.uses: list[tuple[Tensor, Tensor]] = []
        self.weight, self.bias = _Gathered.apply(weight, bias, self.uses)

    def __call__(self, x: Tensor) -> Tensor:
        return _StepLinear.apply(x, self.weight, self.bias, self.uses)


class TeacherForcedRNN:
    """A decoder's stacked ``nn.GRU``/``nn.LSTM`` for one teacher-forced pass, step by step.

    ``embedded`` (B,T,E) is every step's embedding, the first E columns of layer 0's input: its
    gates are one (B*T,E) x (E,G) matmul here. Call once per step, in order, with the rest of
    layer 0's input (B,I-E) (Luong's input feed or Bahdanau's context; None if there is none)
    and the state: ``(top (B,H), hidden (B,L,H), cell (B,L,H) or None)``, as
    ``RNNDecoder._rnn_step``. Dropout between layers is the RNN's own, in training.
    """

    def __init__(self, rnn: nn.GRU | nn.LSTM, embedded: Tensor) -> None:
        self.lstm, self.dropout, self.training = isinstance(rnn, nn.LSTM), rnn.dropout, rnn.training
        emb_dim, layers = embedded.size(-1), rnn.num_layers
        weight = rnn.weight_ih_l0
        self.embedded_gates = nn.functional.linear(
            embedded, weight[:, :emb_dim], getattr(rnn, "bias_ih_l0", None)
        ).unbind(1)  # T of (B,G)
        self.rest = StepLinear(weight[:, emb_dim:]) if weight.size(1) > emb_dim else None
        self.inputs = [
            StepLinear(getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"bias_ih_l{k}", None))
            for k in range(1, layers)
        ]
        self.hiddens = [
            StepLinear(getattr(rnn, f"weight_hh_l{k}"), getattr(rnn, f"bias_hh_l{k}", None))
            for k in range(layers)
        ]
        self.t = 0

    def __call__(
        self, rest: Tensor | None, hidden: Tensor, cell: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        gates_x = self.embedded_gates[self.t]
        self.t += 1
        if self.rest is not None:
            gates_x = gates_x + self.rest(rest)
        hiddens, cells = [], []
        for k, recurrent in enumerate(self.hiddens):
            if k > 0:
                below = nn.functional.dropout(hiddens[-1], self.dropout, self.training)
                gates_x = self.inputs[k - 1](below)
            gates_h = recurrent(hidden[:, k])
            if self.lstm:
                top, c = lstm_update(gates_x + gates_h, cell[:, k])
                cells.append(c)
            else:
                top = gru_update(gates_x, gates_h, hidden[:, k])
            hiddens.append(top)
        new_cell = torch.stack(cells, 1) if self.lstm else None
        return hiddens[-1], torch.stack(hiddens, 1), new_cell
