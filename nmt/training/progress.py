"""Where a training run stands, and when it must stop.

The counters travel in every checkpoint, so a resumed run knows its step, its place in the
epoch and its best score; the stop conditions are checked after every update.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

from nmt.config import TrainConfig
from nmt.device import Distributed, all_agree, all_max
from nmt.training.optim import HIGHER_IS_BETTER


@dataclass
class Progress:
    """Counters a checkpoint carries so a resumed run continues exactly where it stopped."""

    step: int = 0  # updates done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch already consumed
    best_value: float | None = None
    best_step: int = 0
    bad_validations: int = 0  # since the best, for early stopping
    tgt_tokens: int = 0  # on all ranks together
    world: int = 1  # ranks that wrote it: batch_in_epoch counts each rank's share of batches
    elapsed_s: float = 0.0  # of train.max_time, so a resumed run's budget and schedule go on

    def record(self, value: float, tc: TrainConfig) -> tuple[bool, str | None]:
        """Note a validation result: (whether it is a new best, an early-stopping reason)."""
        best = self.best_value
        improved = best is None or (value > best if HIGHER_IS_BETTER[tc.metric] else value < best)
        if improved:
            self.best_value, self.best_step, self.bad_validations = value, self.step, 0
        else:
            self.bad_validations += 1
        if tc.patience and self.bad_validations >= tc.patience:
            return improved, (
                f"early stopping: no {tc.metric} improvement in {tc.patience} "
                f"validations (best {self.best_value:.2f} at step {self.best_step})"
            )
        return improved, None


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each update."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def budget_spent(budget_s: float | None, started_at: float, dist: Distributed) -> float:
    """The fraction of ``train.max_time`` used since ``started_at``; 0 without a budget.

    Ranks read their own clocks, so the largest reading is shared: every rank then applies the
    same learning rate and stops at the same update.
    """
    if budget_s is None:
        return 0.0
    return all_max(dist, (time.monotonic() - started_at) / budget_s)


def stop_reason(
    tc: TrainConfig,
    progress: Progress,
    spent: float,
    stop: StopRequested,
    dist: Distributed,
) -> str | None:
    """Why the run must stop now, if it must; every rank gets the same answer.

    ``spent`` is ``budget_spent``'s fraction of the time budget, equal on all ranks.
    """
    if progress.step >= tc.max_steps:
        return f"reached train.max_steps={tc.max_steps}"
    if tc.max_epochs and progress.epoch >= tc.max_epochs:
        return f"reached train.max_epochs={tc.max_epochs}"
    if spent >= 1.0:
        return f"train.max_time={tc.max_time} spent"
    if not all_agree(dist, stop.reason is None):
        return f"received {stop.reason or 'a stop signal on another rank'}"
    return None
