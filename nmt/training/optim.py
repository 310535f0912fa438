"""Optimizer and learning-rate schedule.

One small schedule object instead of chained torch schedulers: the rate is a pure function of the
step (warm-up, inverse square root or linear decay) times a plateau factor that validation lowers,
so every combination composes and the whole state is two numbers in the checkpoint.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nmt.config import TrainConfig

HIGHER_IS_BETTER = {"bleu": True, "chrf": True, "loss": False, "ppl": False}


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over the trainable parameters, fused: one pass over each tensor instead
    of one per arithmetic operation (the peer shape's step on CPU: 41 -> 10 ms, BENCHMARKS.md)."""
    optimizer_class = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(
        model.parameters(),
        lr=cfg.lr,
        betas=(0.9, 0.999),
        weight_decay=cfg.weight_decay,
        fused=True,
    )


class LearningRate:
    """lr(step) = base * shape(step) * plateau_scale, applied to the optimizer by ``apply``.

    Shapes: ``constant`` (linear warm-up, then flat), ``inverse_sqrt`` (warm-up, then
    base * sqrt(warmup / step)), ``linear`` (warm-up, then linear decay to ``min_lr`` at
    ``max_steps``), ``plateau`` (warm-up, then flat; ``validated`` cuts the scale by
    ``plateau_factor`` after ``plateau_patience`` validations without improvement).
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.plateau_scale = 1.0
        self.bad_validations = 0
        self.best: float | None = None

    def at(self, step: int, spent: float = 0.0) -> float:
        """The learning rate of update ``step`` (1-based) with ``spent`` of the time budget used."""
        cfg, warmup = self.cfg, max(self.cfg.warmup_steps, 0)
        shape = min(1.0, step / warmup) if warmup else 1.0
        if cfg.schedule == "inverse_sqrt" and step > warmup:
            shape = math.sqrt(max(warmup, 1) / step)
        elif cfg.schedule == "linear" and step > warmup:
            progress = max((step - warmup) / max(1, cfg.max_steps - warmup), spent)
            floor = cfg.min_lr / cfg.lr
            shape = max(floor, 1.0 - (1.0 - floor) * min(1.0, progress))
        return max(cfg.lr * shape * self.plateau_scale, min(cfg.min_lr, cfg.lr * shape))

    def apply(self, optimizer: torch.optim.Optimizer, step: int, spent: float = 0.0) -> float:
        lr = self.at(step, spent)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def validated(self, value: float) -> None:
        """Record a validation result; on ``plateau`` lower the scale when it stops improving."""
        better = self.best is None or (
            value > self.best if HIGHER_IS_BETTER[self.cfg.metric] else value < self.best
        )
        if better:
            self.best, self.bad_validations = value, 0
            return
        self.bad_validations += 1
        if self.cfg.schedule == "plateau" and self.bad_validations > self.cfg.plateau_patience:
            self.plateau_scale *= self.cfg.plateau_factor
            self.bad_validations = 0

    def state_dict(self) -> dict[str, float | int | None]:
        return {
            "plateau_scale": self.plateau_scale,
            "bad_validations": self.bad_validations,
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.bad_validations = int(state["bad_validations"])
        self.best = None if state["best"] is None else float(state["best"])
