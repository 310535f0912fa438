"""Resuming a run: which checkpoint, which settings, and the state put back on every rank.

A resume continues the run it names exactly (weights, optimizer, schedule, counters, each rank's
random state, the time already spent). ``train.resume=auto`` resumes this run directory's own
``last.pt`` when there is one and starts afresh otherwise, so a requeued cluster job can repeat
one command: ``nmt-train hydra.run.dir=runs/x train.resume=auto ...``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nmt.checkpoint import CHECKPOINT_DIR, CheckpointError, load_checkpoint, restore_rng
from nmt.config import Config, DataConfig, ModelConfig
from nmt.training.progress import Progress

if TYPE_CHECKING:
    from nmt.training.train import Run

log = logging.getLogger("nmt")


def checkpoint_to_resume(resume: str | None, run_dir: Path) -> dict | None:
    """The checkpoint ``train.resume`` names (``auto``: this run's ``last.pt`` if any), loaded."""
    if resume == "auto":
        own = Path(run_dir) / CHECKPOINT_DIR / "last.pt"
        if not own.is_file():
            return None
        resume = str(own)
    if resume is None:
        return None
    payload = load_checkpoint(resume, prefer="last")
    if "optimizer" not in payload:
        raise CheckpointError(
            f"train.resume={resume}: {payload['path']} holds weights only (best.pt and step_*.pt "
            "do), not the optimizer and counters a resume needs; resume from the run directory "
            f"or its {CHECKPOINT_DIR}/last.pt"
        )
    return payload


def config_for_resume(cfg: Config, resumed: dict) -> Config:
    """Data and model settings come from the checkpoint; the training and decode ones from now."""
    saved = resumed["config"]
    data, model = DataConfig(**saved["data"]), ModelConfig(**saved["model"])
    for name, now, then in (("data", cfg.data, data), ("model", cfg.model, model)):
        if now != then:
            log.warning(f"resuming: using the checkpoint's {name} settings, not the command line's")
    return replace(cfg, data=data, model=model)


def restore(run: Run, resumed: dict) -> None:
    """Weights (and their average), optimizer, schedule, loss scale, counters and this rank's
    random state.

    On a different number of ranks the position in the epoch is re-planned: each rank's count
    of batches becomes the new ranks' share of the same batches, so no data is skipped.
    """
    dist = run.dist
    run.model.load_state_dict(resumed.get("train_model", resumed["model"]))
    if run.ema is not None:  # a run without train.ema before starts its average here
        run.ema.load_state_dict(resumed["model"])
    run.optimizer.load_state_dict(resumed["optimizer"])
    run.schedule.load_state_dict(resumed["schedule"])
    if resumed.get("scaler"):
        run.scaler.load_state_dict(resumed["scaler"])
    progress = run.progress = Progress(**resumed["progress"])
    if not restore_rng(resumed, dist.rank, dist.world):
        log.info(f"rank {dist.rank}: the checkpoint holds no random state for it; seeded afresh")
    if progress.world != dist.world:
        done = progress.batch_in_epoch * progress.world
        progress.batch_in_epoch, progress.world = done // dist.world, dist.world
        log.warning(
            f"resuming a {resumed['progress'].get('world', 1)}-rank run on {dist.world}: "
            f"the epoch goes on after {progress.batch_in_epoch * dist.world} of its batches"
        )
    log.info(f"resumed from {resumed['path']} at step {progress.step}")
