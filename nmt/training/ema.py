"""An exponential moving average of the weights, kept beside the trained ones (``train.ema``).

After every applied update ``ema <- d * ema + (1 - d) * weights`` with ``d = min(train.ema,
(1 + step) / (10 + step))``: the warm-up keeps the first updates' random weights from lingering
when a run is short. Validation, ``best.pt`` and every checkpoint's ``model`` hold the average
(what ``nmt-translate``, ``nmt-evaluate`` and ``nmt-average`` read); ``last.pt`` also keeps the
trained weights as ``train_model``, so a resume continues both exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


def ema_decay(decay: float, step: int) -> float:
    """The decay applied after update ``step`` (1-based): ``decay``, warmed up over early steps."""
    return min(decay, (1.0 + step) / (10.0 + step))


class WeightAverage:
    """Float32 shadow copies of a model's floating-point parameters and buffers.

    The model's tensors are looked up once: training updates them in place. A tensor under two
    names (tied embeddings) is averaged once, under the first.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model, self.decay = model, decay
        self.live: dict[str, Tensor] = {}  # name -> the model's own tensor
        self.alias: dict[str, str] = {}  # every floating-point name -> its name in ``live``
        first: dict[int, str] = {}
        for name, tensor in model.state_dict(keep_vars=True).items():
            if tensor.is_floating_point():
                self.alias[name] = first.setdefault(id(tensor), name)
                if self.alias[name] == name:
                    self.live[name] = tensor
        self.shadow = {n: t.detach().float().clone() for n, t in self.live.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the model's current weights after update ``step``."""
        current = [t.detach().float() for t in self.live.values()]
        torch._foreach_lerp_(list(self.shadow.values()), current, 1.0 - ema_decay(self.decay, step))

    def state_dict(self) -> dict[str, Tensor]:
        """``model.state_dict()`` with the averaged tensors in place of the trained ones."""
        state = self.model.state_dict()
        return state | {n: self.shadow[a].to(state[n].dtype) for n, a in self.alias.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for name, shadow in self.shadow.items():
            shadow.copy_(state[name])

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Run the block with the averaged weights in the model, the trained ones put back after."""
        saved = {n: t.detach().clone() for n, t in self.live.items()}
        with torch.no_grad():
            for name, tensor in self.live.items():
                tensor.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, tensor in self.live.items():
                    tensor.copy_(saved[name])
