"""The training loop, read top to bottom: set up, then one ``while`` over updates.

``train`` owns the data, the model, the optimizer and the log writer; the model never logs. A run
stops at ``max_steps``, ``max_epochs``, ``max_time``, early stopping, SIGINT/SIGTERM, or a
non-finite loss, and always leaves a loadable ``last`` checkpoint (written atomically).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from nmt.checkpoint import (
    CHECKPOINT_DIR,
    rng_state,
    rotate_step_checkpoints,
    save_checkpoint,
    training_payload,
    vocabularies_from,
)
from nmt.config import Config, parse_duration
from nmt.data.batching import Batch, EncodedSplit, collate, epoch_batches, shard
from nmt.data.prepare import PreparedCorpus, prepare
from nmt.device import Distributed, gather_objects, training_device
from nmt.files import remove_temporaries
from nmt.model import Seq2Seq, Seq2SeqLoss, build_model, count_parameters
from nmt.training.ema import WeightAverage
from nmt.training.optim import LearningRate, build_optimizer
from nmt.training.progress import Progress, StopRequested, budget_spent, stop_reason
from nmt.training.resume import checkpoint_to_resume, config_for_resume, restore
from nmt.training.run_log import RunLog
from nmt.training.update import skip_reason, train_step
from nmt.training.validate import ValidationResult, validate

log = logging.getLogger("nmt")


@dataclass
class Run:
    """Everything one training run holds, built once by ``train``."""

    cfg: Config
    model: Seq2Seq
    objective: nn.Module  # what training calls: Seq2SeqLoss(model), in DDP under torchrun
    optimizer: torch.optim.Optimizer
    schedule: LearningRate
    scaler: torch.amp.GradScaler  # fp16 loss scaling; a pass-through otherwise
    corpus: PreparedCorpus
    log: RunLog
    dist: Distributed
    device: torch.device
    precision: str  # train.precision with ``auto`` resolved for ``device``
    progress: Progress = field(default_factory=Progress)
    last: ValidationResult | None = None
    ema: WeightAverage | None = None  # train.ema: what validation and checkpoints use


@dataclass
class TrainResult:
    """What a finished run hands back to its caller (scripts, tests)."""

    model: Seq2Seq
    progress: Progress
    validation: ValidationResult | None
    stop_reason: str


def train(cfg: Config, run_dir: Path, started_at: float | None = None) -> TrainResult:
    """Train the configured model, writing checkpoints and TensorBoard logs under ``run_dir``.

    ``started_at`` (a ``time.monotonic()`` reading, default: now) is where ``train.max_time``
    starts counting; the command line passes the process start.
    """
    started_at = time.monotonic() if started_at is None else started_at
    dist, device, precision = training_device(cfg.train.device, cfg.train.precision)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    resumed = checkpoint_to_resume(cfg.train.resume, run_dir)
    if resumed is not None:
        cfg = config_for_resume(cfg, resumed)
    random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    vocabs = vocabularies_from(resumed) if resumed else None
    if not dist.is_main:
        log.setLevel(logging.WARNING)  # one rank reports
        dist.barrier()  # rank 0 builds the corpus and vocabulary caches, the others then read them
    corpus = prepare(cfg.data, ["valid"], log=log.info, vocabs=vocabs)
    if dist.is_main:
        dist.barrier()
    model = build_model(cfg.model, len(corpus.vocabs.src), len(corpus.vocabs.tgt)).to(device)
    if dist.world > 1:  # the same initial weights, each rank its own dropout (data order: seed)
        random.seed(cfg.train.seed * 1_000 + dist.rank)
        torch.manual_seed(cfg.train.seed * 1_000 + dist.rank)
    log.info(
        f"model: {count_parameters(model):,} parameters ({cfg.model.rnn} encoder, "
        f"{cfg.model.decoder} decoder, {cfg.model.attention} attention) on {device}, {precision}"
        + (" (train.precision=auto)" if cfg.train.precision == "auto" else "")
    )
    run = Run(
        cfg,
        model,
        Seq2SeqLoss(model),
        build_optimizer(model, cfg.train),
        LearningRate(cfg.train),
        torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        corpus,
        RunLog(run_dir, enabled=dist.is_main),
        dist,
        device,
        precision,
        Progress(world=dist.world),
        ema=WeightAverage(model, cfg.train.ema) if cfg.train.ema else None,
    )
    if resumed is not None:
        restore(run, resumed)
    if dist.is_main:  # what a kill during a save left (only rank 0 writes checkpoints)
        for stale in remove_temporaries(run.log.dir / CHECKPOINT_DIR, "*"):
            log.info(f"removed {stale}, left by an interrupted save")
    run.objective = dist.wrap(run.objective)
    try:
        with StopRequested() as stop:
            reason = _loop(run, stop, started_at)
    finally:
        run.log.close()
        dist.close()
    return TrainResult(model, run.progress, run.last, reason)


def _loop(run: Run, stop: StopRequested, started_at: float) -> str:
    """Update until a stop condition holds; returns the reason."""
    tc, progress, dist = run.cfg.train, run.progress, run.dist
    budget_s = parse_duration(tc.max_time) if tc.max_time else None
    clock = started_at - progress.elapsed_s  # a resumed run's budget goes on where it stopped
    spent = budget_spent(budget_s, clock, dist)
    batches = _epoch_batches(run)
    bar = tqdm(
        total=None if tc.max_time else tc.max_steps,  # a time budget makes a step ETA moot
        initial=progress.step,
        unit="step",
        dynamic_ncols=True,
        disable=not (tc.progress and dist.is_main),
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    window = {"tokens": 0, "loss": 0.0, "start": time.perf_counter()}
    skipped, first_step = 0, progress.step  # a resumed run may have nothing left to do
    reason = stop_reason(tc, progress, spent, stop, dist) if progress.step else None
    while reason is None:
        group, batches = _next_group(run, batches)
        lr = run.schedule.apply(run.optimizer, progress.step + 1, spent)
        update = train_step(run, group)
        if update.applied:  # the same on every rank: global loss, all-reduced gradients
            if progress.step == first_step:
                log.info(f"first update done {time.monotonic() - started_at:.1f} s after start")
            progress.step += 1
            if run.ema is not None:
                run.ema.update(progress.step)
            progress.tgt_tokens += update.tokens
            window["tokens"] += update.tokens
            window["loss"] += update.loss * update.tokens
            bar.update(1)
            if progress.step % tc.log_every == 0:
                _log_window(run, window, lr, update.grad_norm, bar)
            skipped = 0
        else:
            skipped += 1
            reason = skip_reason(run, update, skipped)
            if reason is not None:
                break
        progress.elapsed_s = time.monotonic() - clock
        spent = budget_spent(budget_s, clock, dist)
        reason = stop_reason(tc, progress, spent, stop, dist)
        if reason is not None and reason.startswith("received"):  # preemption: save, nothing else
            _save(run, "last.pt", full=True)
        elif progress.step % tc.val_every == 0 and skipped == 0 or reason is not None:
            reason = _validate_and_save(run) or reason
    bar.close()
    if reason.startswith("stopping"):
        log.error(f"{reason}; the best checkpoint is left untouched")
        _save(run, "last.pt", full=True)
        raise FloatingPointError(reason)
    log.info(
        f"stopped after {progress.step:,} updates ({progress.epoch} full epochs, "
        f"{progress.tgt_tokens:,} target tokens): {reason}"
    )
    run.log.finish(run.cfg, run.last)
    return reason


def _epoch_batches(run: Run) -> list[list[int]]:
    """This rank's batches of the current epoch: shuffled by (seed, epoch), the same plan on
    every rank, each pair on one rank."""
    data, dist = run.cfg.data, run.dist
    seed = run.cfg.train.seed * 100_003 + run.progress.epoch
    batches = epoch_batches(run.corpus.encoded["train"], data.batch_tokens, data.batch_sents, seed)
    return shard(batches, dist.rank, dist.world, run.cfg.train.accum_steps)


def _next_group(run: Run, batches: list[list[int]]) -> tuple[list[Batch], list[list[int]]]:
    """The next ``accum_steps`` batches, moving on to the next epoch when this one is used up."""
    split: EncodedSplit = run.corpus.encoded["train"]
    group, progress = [], run.progress
    while len(group) < run.cfg.train.accum_steps:
        if progress.batch_in_epoch >= len(batches):
            batches = _next_epoch(run)
        group.append(collate(split, batches[progress.batch_in_epoch]).to(run.device))
        progress.batch_in_epoch += 1
    if progress.batch_in_epoch >= len(batches):  # done now, so train.max_epochs stops here
        batches = _next_epoch(run)
    return group, batches


def _next_epoch(run: Run) -> list[list[int]]:
    run.progress.epoch, run.progress.batch_in_epoch = run.progress.epoch + 1, 0
    return _epoch_batches(run)


def _log_window(run: Run, window: dict, lr: float, grad_norm: float, bar: tqdm) -> None:
    """Training scalars over the updates since the last report, and the progress bar's figures."""
    speed = window["tokens"] / max(time.perf_counter() - window["start"], 1e-9)  # all ranks
    loss = window["loss"] / max(window["tokens"], 1)
    run.log.train_scalars(run.progress.step, loss, lr, grad_norm, speed)
    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{speed:,.0f}", lr=f"{lr:.2e}", refresh=False)
    window.update(tokens=0, loss=0.0, start=time.perf_counter())


def _validate_and_save(run: Run) -> str | None:
    """Validate, log, write ``last`` (and ``best`` on improvement); returns an early-stop reason."""
    tc, progress = run.cfg.train, run.progress
    with run.ema.applied() if run.ema is not None else nullcontext():
        result = validate(
            run.model,
            run.corpus,
            run.cfg.decode,
            tc.val_sentences,
            tc.plot_sentences,
            run.device,
            tc.explore_sentences if run.dist.is_main else 0,
        )
    value = result.metric(tc.metric)
    run.schedule.validated(value)
    improved, early = progress.record(value, tc)
    run.last = result
    run.log.validation(progress.step, result, improved, progress)
    _save(run, "last.pt", full=True)
    if improved:
        _save(run, "best.pt", full=False)
    if tc.keep_checkpoints:
        _save(run, f"step_{progress.step}.pt", full=False)
        if run.dist.is_main:
            rotate_step_checkpoints(run.log.dir / CHECKPOINT_DIR, tc.keep_checkpoints)
    return early


def _save(run: Run, name: str, full: bool) -> None:
    """Write a checkpoint under the run directory (rank 0 only); ``full`` adds resume state."""
    rng_states = gather_objects(run.dist, rng_state()) if full else None  # every rank takes part
    if not run.dist.is_main:
        return
    optimizer = run.optimizer if full else None
    progress = asdict(run.progress)
    payload = training_payload(
        run.cfg,
        run.model,
        run.corpus.vocabs,
        progress,
        optimizer,
        run.schedule.state_dict(),
        rng_states,
    )
    if full:
        payload["scaler"] = run.scaler.state_dict()
    if run.ema is not None:  # inference reads the average; a resume needs the trained weights too
        if full:
            payload["train_model"] = payload["model"]
        payload["model"] = run.ema.state_dict()
    if run.corpus.shortlist is not None:  # what decode.shortlist reads
        arrays = run.corpus.shortlist.to_arrays()
        payload["shortlist"] = {name: torch.from_numpy(array) for name, array in arrays.items()}
    save_checkpoint(payload, run.log.dir / CHECKPOINT_DIR / name)
