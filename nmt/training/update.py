"""One update: forward and backward over the accumulated batches, loss scaling, clipping, step.

The loop needs to know whether the update was applied and, if not, why. An fp16 overflow (the
scaled gradients are inf while the loss is finite) is routine: GradScaler skips the step and
halves its scale, most often in the first updates, since it starts high on purpose. A non-finite
loss, or a non-finite gradient without loss scaling, is a real fault: ``train.nonfinite`` decides.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from nmt.data.batching import Batch
from nmt.device import all_sum, autocast
from nmt.training.scheduled_sampling import sampled_inputs

if TYPE_CHECKING:
    from nmt.training.train import Run

log = logging.getLogger("nmt")


@dataclass(frozen=True)
class Update:
    """What one update did.

    Attributes:
        loss: cross-entropy per target token over the whole group, on all ranks together.
        tokens: target tokens of the group, on all ranks together.
        grad_norm: the gradient norm before clipping (inf or nan when not finite).
        applied: whether the optimizer stepped.
        overflow: fp16 only: skipped by the loss scaler with a finite loss (not a fault).
    """

    loss: float
    tokens: int
    grad_norm: float
    applied: bool
    overflow: bool


def train_step(run: Run, group: list[Batch]) -> Update:
    """One update from ``group`` (this rank's accumulated batches).

    The summed loss is divided by the target tokens of the whole group on *all* ranks, and
    multiplied by the number of ranks because DDP averages gradients: every token weighs the
    same whichever rank holds it, so k ranks equal one process accumulating their k batches.
    """
    tc, dist = run.cfg.train, run.dist
    tokens = int(all_sum(dist, sum(batch.n_tgt_tokens for batch in group)))
    run.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for index, batch in enumerate(group):
        tgt_in = batch.tgt_in
        if tc.sampling_prob:
            tgt_in = sampled_inputs(run.model, batch, tc.sampling_prob)
        last = index == len(group) - 1
        sync = nullcontext() if last or not dist.active else run.objective.no_sync()
        with sync:
            with autocast(run.device, run.precision):
                out = run.objective(
                    batch.src, batch.src_lens, tgt_in, batch.tgt_out, tc.label_smoothing
                )
                loss = out.loss / tokens * dist.world  # exactly loss / tokens alone
            run.scaler.scale(loss).backward()
        total += loss.item() / dist.world
    total = all_sum(dist, total)
    run.scaler.unscale_(run.optimizer)
    params = [p for p in run.model.parameters() if p.grad is not None]
    max_norm = tc.clip_norm if tc.clip_norm > 0 else float("inf")
    grad_norm = float(nn.utils.clip_grad_norm_(params, max_norm))
    applied = math.isfinite(total) and math.isfinite(grad_norm)
    if applied:
        run.scaler.step(run.optimizer)
    run.scaler.update()  # lowers the scale after an overflow
    overflow = run.scaler.is_enabled() and math.isfinite(total) and not applied
    return Update(total, tokens, grad_norm, applied, overflow)


def skip_reason(run: Run, update: Update, skipped: int) -> str | None:
    """Note an update that was not applied; a reason to stop when it is a fault to stop on."""
    tc, step = run.cfg.train, run.progress.step + 1
    if update.overflow:
        log.info(
            f"fp16 overflow at step {step}: update skipped, loss scale now "
            f"{run.scaler.get_scale():g}"
        )
    elif tc.nonfinite == "stop":
        return f"stopping: non-finite loss or gradient at step {step}"
    else:
        log.warning(f"skipped a batch at step {step}: non-finite loss or gradient")
    if skipped >= tc.max_skipped:
        return (
            f"stopping: {skipped} updates in a row were skipped (train.max_skipped="
            f"{tc.max_skipped}): the loss or the gradients keep overflowing or being non-finite"
        )
    return None
