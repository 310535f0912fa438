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
    """Float32 shadow copies of a model's floating-point parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.names = [n for n, t in model.state_dict().items() if t.is_floating_point()]
        self.shadow = {n: t.detach().float().clone() for n, t in self._tensors(model).items()}

    def _tensors(self, model: nn.Module) -> dict[str, Tensor]:
        state = model.state_dict(keep_vars=True)  # tied weights appear under both names
        return {name: state[name] for name in self.names}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards the model's current weights after update ``step``."""
        current = [t.detach().float() for t in self._tensors(model).values()]
        weight = 1.0 - ema_decay(self.decay, step)
        torch._foreach_lerp_(list(self.shadow.values()), current, weight)

    def state_dict(self, model: nn.Module) -> dict[str, Tensor]:
        """``model.state_dict()`` with the averaged tensors in place of the trained ones."""
        state = model.state_dict()
        return state | {n: self.shadow[n].to(state[n].dtype).clone() for n in self.names}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for name in self.names:
            self.shadow[name].copy_(state[name])

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Run the block with the averaged weights in ``model``, the trained ones put back after."""
        tensors = self._tensors(model)
        saved = {n: t.detach().clone() for n, t in tensors.items()}
        with torch.no_grad():
            for name, tensor in tensors.items():
                tensor.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, tensor in tensors.items():
                    tensor.copy_(saved[name])
