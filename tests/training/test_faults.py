"""Training under faults: fp16 overflows, preemption, skipped batches, budgets across resumes,
epoch limits, ranks with unequal batches, and what interrupted saves leave behind."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import spawn_ranks, tiny_config

import nmt.model.decoder as decoder_module
import nmt.training.train as train_module
from nmt.checkpoint import load_checkpoint
from nmt.device import Distributed
from nmt.training.train import train


class InfiniteGradient(torch.autograd.Function):
    """The identity forward (a finite loss) with an infinite gradient: an fp16 overflow."""

    @staticmethod
    def forward(ctx, loss):
        return loss.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def poison_training_losses(monkeypatch, poison, calls):
    """Apply ``poison(loss)`` to the training losses (not validation's) whose number is in
    ``calls`` (1-based; a callable ``calls(n)`` also works)."""
    real_loss, count = decoder_module.linear_cross_entropy, {"n": 0}
    hit = calls if callable(calls) else (lambda n: n in calls)

    def poisoned(*args):
        loss = real_loss(*args)
        if not torch.is_grad_enabled():
            return loss
        count["n"] += 1
        return poison(loss) if hit(count["n"]) else loss

    monkeypatch.setattr(decoder_module, "linear_cross_entropy", poisoned)


def as_fp16_on_the_cpu(monkeypatch):
    """Train with loss scaling as on a GPU in fp16 (CPU autocast does float16 too)."""
    monkeypatch.setattr(
        train_module, "training_device", lambda *_: (Distributed(), torch.device("cpu"), "fp16")
    )


def test_fp16_overflows_are_skipped_updates_not_a_fatal_error(tmp_path, monkeypatch):
    as_fp16_on_the_cpu(monkeypatch)
    poison_training_losses(monkeypatch, InfiniteGradient.apply, {1, 2, 3})
    result = train(tiny_config(tmp_path, max_steps=6, val_every=6), tmp_path / "run")
    assert result.stop_reason.startswith("reached train.max_steps")
    last = load_checkpoint(tmp_path / "run", prefer="last")
    assert last["progress"]["step"] == 6 and last["progress"]["batch_in_epoch"] == 9
    assert last["scaler"]["scale"] == 65536.0 / 8  # halved once per overflow


def test_overflowing_forever_stops_after_max_skipped(tmp_path, monkeypatch):
    as_fp16_on_the_cpu(monkeypatch)
    poison_training_losses(monkeypatch, InfiniteGradient.apply, lambda n: n > 2)
    cfg = tiny_config(tmp_path, max_steps=50, max_skipped=5, max_time="60s")
    with pytest.raises(FloatingPointError, match="5 updates in a row were skipped"):
        train(cfg, tmp_path / "run")
    last = load_checkpoint(tmp_path / "run", prefer="last")
    assert last["progress"]["step"] == 2


def test_all_non_finite_batches_in_skip_mode_stop_after_max_skipped(tmp_path, monkeypatch):
    poison_training_losses(monkeypatch, lambda loss: loss * float("nan"), lambda n: n > 3)
    cfg = tiny_config(tmp_path, max_steps=50, nonfinite="skip", max_skipped=4, max_time="60s")
    with pytest.raises(FloatingPointError, match="4 updates in a row"):
        train(cfg, tmp_path / "run")


def signal_at_update(monkeypatch, number: int, poison=None):
    """SIGTERM this process during update ``number``, optionally poisoning that update's loss."""
    real_step, count = train_module.train_step, {"n": 0}

    def step(run, group):
        count["n"] += 1
        if count["n"] == number:
            os.kill(os.getpid(), signal.SIGTERM)
            if poison is not None:
                poison_training_losses(monkeypatch, poison, {1})
        return real_step(run, group)

    monkeypatch.setattr(train_module, "train_step", step)


def test_sigterm_saves_first_and_does_not_validate(tmp_path, monkeypatch):
    signal_at_update(monkeypatch, 4)
    result = train(tiny_config(tmp_path, max_steps=50, val_every=3), tmp_path / "run")
    assert result.stop_reason == "received SIGTERM"
    assert load_checkpoint(tmp_path / "run", prefer="last")["progress"]["step"] == 4
    validated = sorted(p.name for p in (tmp_path / "run" / "attention").glob("*.npz"))
    assert validated == ["valid_step0000003.npz"]  # none off-schedule for the preemption
    assert result.progress.bad_validations == 0 and result.progress.best_step == 3


def test_a_stop_on_a_skipped_batch_still_saves(tmp_path, monkeypatch):
    signal_at_update(monkeypatch, 4, poison=lambda loss: loss * float("inf"))
    cfg = tiny_config(tmp_path, max_steps=50, val_every=100, nonfinite="skip")
    result = train(cfg, tmp_path / "run")
    assert result.stop_reason == "received SIGTERM"
    last = load_checkpoint(tmp_path / "run", prefer="last")
    assert last["progress"]["step"] == 3 and last["progress"]["batch_in_epoch"] == 4


def test_max_epochs_stops_at_the_end_of_the_epoch(tmp_path):
    from nmt.data.batching import epoch_batches
    from nmt.data.prepare import prepare

    cfg = tiny_config(tmp_path, max_steps=1000, max_epochs=1, val_every=1000)
    split = prepare(cfg.data, [], log=lambda _: None).encoded["train"]
    seed = cfg.train.seed * 100_003
    batches = epoch_batches(split, cfg.data.batch_tokens, cfg.data.batch_sents, seed)
    result = train(cfg, tmp_path / "run")
    assert result.stop_reason == "reached train.max_epochs=1"
    assert result.progress.step == len(batches)
    assert result.progress.tgt_tokens == sum(len(split.tgt[i]) + 1 for b in batches for i in b)


def test_the_time_budget_goes_on_across_a_resume(tmp_path):
    first = train(tiny_config(tmp_path, max_steps=10_000, max_time="4s"), tmp_path / "first")
    assert first.stop_reason == "train.max_time=4s spent" and first.progress.elapsed_s >= 4
    resumed = train(
        tiny_config(tmp_path, max_steps=10_000, max_time="4s", resume=str(tmp_path / "first")),
        tmp_path / "second",
    )
    assert resumed.stop_reason == "train.max_time=4s spent"
    assert resumed.progress.step == first.progress.step  # the budget was already spent


def test_resuming_a_finished_run_trains_no_further(tmp_path):
    train(tiny_config(tmp_path, max_steps=3, val_every=3), tmp_path / "run")
    again = train(tiny_config(tmp_path, max_steps=3, resume=str(tmp_path / "run")), tmp_path / "b")
    assert again.progress.step == 3 and again.stop_reason == "reached train.max_steps=3"


def test_temporaries_of_an_interrupted_save_are_removed(tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    train(tiny_config(tmp_path, max_steps=2, val_every=2), tmp_path / "run")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.pt", "last.pt"]
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~_umask() for p in checkpoints.iterdir())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _ddp_rank(rank: int, tmp_path: Path, steps: int, name: str) -> None:
    cfg = _no_dropout(tiny_config(tmp_path, max_steps=steps, val_every=steps))
    result = train(cfg, tmp_path / name)
    torch.save(result.model.state_dict(), tmp_path / f"{name}{rank}.pt")
    torch.save(torch.rand(4), tmp_path / f"{name}{rank}.rand")  # this rank's generator


def _no_dropout(cfg):
    return replace(cfg, model=replace(cfg.model, dropout=0.0))


def _spawn(tmp_path: Path, steps: int, name: str) -> None:
    spawn_ranks(_ddp_rank, 2, tmp_path, steps, name)


def test_two_ranks_equal_one_process_accumulating_their_batches(tmp_path):
    """Every target token weighs the same whichever rank holds it (global token normalisation);
    each rank draws its own random numbers."""
    single = train(
        _no_dropout(tiny_config(tmp_path, max_steps=3, val_every=3, accum_steps=2)),
        tmp_path / "single",
    )
    _spawn(tmp_path, 3, "ddp")
    ddp = torch.load(tmp_path / "ddp0.pt")
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(ddp[name], tensor, rtol=1e-4, atol=1e-6, msg=name)
    ddp_last = load_checkpoint(tmp_path / "ddp", prefer="last")
    assert ddp_last["progress"]["tgt_tokens"] == single.progress.tgt_tokens  # all ranks'
    assert not torch.equal(torch.load(tmp_path / "ddp0.rand"), torch.load(tmp_path / "ddp1.rand"))
    assert len(ddp_last["rng_per_rank"]) == 2


def test_a_two_rank_run_resumed_on_one_rank_goes_on_where_both_stopped(tmp_path):
    _spawn(tmp_path, 2, "ddp")  # 2 updates on each rank: batches 0-3 of the epoch
    saved = load_checkpoint(tmp_path / "ddp", prefer="last")["progress"]
    assert (saved["world"], saved["batch_in_epoch"]) == (2, 2)
    resumed = train(
        _no_dropout(tiny_config(tmp_path, max_steps=3, resume=str(tmp_path / "ddp"))),
        tmp_path / "one",
    )
    assert (resumed.progress.step, resumed.progress.batch_in_epoch) == (3, 5)
    assert (resumed.progress.epoch, resumed.progress.world) == (0, 1)


def test_resume_needs_a_full_checkpoint_and_a_value(tmp_path):
    from nmt.checkpoint import CheckpointError
    from nmt.config import TrainConfig

    train(tiny_config(tmp_path, max_steps=2, val_every=2), tmp_path / "run")
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    with pytest.raises(CheckpointError, match="best.pt holds weights only"):
        train(tiny_config(tmp_path, max_steps=4, resume=str(best)), tmp_path / "again")
    with pytest.raises(ValueError, match="train.resume is empty"):
        TrainConfig(resume="")
    with pytest.raises(CheckpointError, match=r"looked for checkpoints/last.pt\)"):
        train(tiny_config(tmp_path, resume=str(tmp_path)), tmp_path / "again")


def test_resume_auto_starts_afresh_then_goes_on_in_place(tmp_path):
    run_dir = tmp_path / "requeued"
    first = train(tiny_config(tmp_path, max_steps=3, val_every=3, resume="auto"), run_dir)
    assert first.progress.step == 3
    second = train(tiny_config(tmp_path, max_steps=5, val_every=5, resume="auto"), run_dir)
    assert second.progress.step == 5
    assert load_checkpoint(run_dir, prefer="last")["progress"]["step"] == 5


def test_kill_9_at_random_moments_with_resume_ends_as_an_uninterrupted_run():
    """``scripts/kill_resume.py``, short: SIGKILL, resume in place, repeat; then compare."""
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run(
        [sys.executable, "scripts/kill_resume.py", "--kills", "2", "--steps", "24"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problems" in result.stdout
