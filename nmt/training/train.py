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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from nmt.checkpoint import (
    CHECKPOINT_DIR,
    load_checkpoint,
    restore_rng,
    rotate_step_checkpoints,
    save_checkpoint,
    training_payload,
    vocabularies_from,
)
from nmt.config import Config, DataConfig, ModelConfig, parse_duration
from nmt.data.batching import Batch, EncodedSplit, collate, epoch_batches
from nmt.data.prepare import PreparedCorpus, prepare
from nmt.device import Distributed, all_agree, autocast, training_device
from nmt.model import Seq2Seq, Seq2SeqLoss, build_model, count_parameters
from nmt.training.optim import LearningRate, build_optimizer
from nmt.training.progress import Progress, StopRequested, budget_spent, stop_reason
from nmt.training.run_log import RunLog
from nmt.training.scheduled_sampling import sampled_inputs
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
    resumed = load_checkpoint(cfg.train.resume, prefer="last") if cfg.train.resume else None
    if resumed is not None:
        cfg = _config_for_resume(cfg, resumed)
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
    )
    if resumed is not None:
        _restore(run, resumed)
    run.objective = dist.wrap(run.objective)
    try:
        with StopRequested() as stop:
            reason = _loop(run, stop, started_at)
    finally:
        run.log.close()
        dist.close()
    return TrainResult(model, run.progress, run.last, reason)


def _config_for_resume(cfg: Config, resumed: dict) -> Config:
    """Data and model settings come from the checkpoint; the training and decode ones from now."""
    saved = resumed["config"]
    data, model = DataConfig(**saved["data"]), ModelConfig(**saved["model"])
    for name, now, then in (("data", cfg.data, data), ("model", cfg.model, model)):
        if now != then:
            log.warning(f"resuming: using the checkpoint's {name} settings, not the command line's")
    return replace(cfg, data=data, model=model)


def _restore(run: Run, resumed: dict) -> None:
    run.model.load_state_dict(resumed["model"])
    run.optimizer.load_state_dict(resumed["optimizer"])
    run.schedule.load_state_dict(resumed["schedule"])
    if resumed.get("scaler"):
        run.scaler.load_state_dict(resumed["scaler"])
    restore_rng(resumed)
    run.progress = Progress(**resumed["progress"])
    log.info(f"resumed from {resumed['path']} at step {run.progress.step}")


def _loop(run: Run, stop: StopRequested, started_at: float) -> str:
    """Update until a stop condition holds; returns the reason."""
    tc, progress, dist = run.cfg.train, run.progress, run.dist
    budget_s = parse_duration(tc.max_time) if tc.max_time else None
    spent = budget_spent(budget_s, started_at, dist)
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
    reason = None
    while reason is None:
        group, batches = _next_group(run, batches)
        lr = run.schedule.apply(run.optimizer, progress.step + 1, spent)
        loss, tokens, grad_norm = train_step(run, group)
        finite = all_agree(dist, bool(torch.isfinite(torch.tensor([loss, grad_norm])).all()))
        if not finite and tc.nonfinite == "stop":
            reason = f"non-finite loss or gradient at step {progress.step + 1}"
            break
        if finite:
            progress.step += 1
            progress.tgt_tokens += tokens
            window["tokens"] += tokens
            window["loss"] += loss * tokens
            bar.update(1)
            if progress.step % tc.log_every == 0:
                _log_window(run, window, lr, grad_norm, bar)
        else:
            log.warning(f"skipped a batch at step {progress.step + 1}: non-finite loss or gradient")
        spent = budget_spent(budget_s, started_at, dist)
        reason = stop_reason(tc, progress, spent, stop, dist)
        if finite and (progress.step % tc.val_every == 0 or reason is not None):
            reason = _validate_and_save(run) or reason
    bar.close()
    if reason.startswith("non-finite"):
        log.error(f"stopping: {reason}; the best checkpoint is left untouched")
        _save(run, "last.pt", full=True)
        raise FloatingPointError(reason)
    log.info(
        f"stopped after {progress.step:,} updates ({progress.epoch} full epochs, "
        f"{progress.tgt_tokens:,} target tokens): {reason}"
    )
    run.log.finish(run.cfg, progress, run.last)
    return reason


def _epoch_batches(run: Run) -> list[list[int]]:
    """This rank's batches of the current epoch: shuffled by (seed, epoch), equal on all ranks."""
    data, dist = run.cfg.data, run.dist
    seed = run.cfg.train.seed * 100_003 + run.progress.epoch
    batches = epoch_batches(run.corpus.encoded["train"], data.batch_tokens, data.batch_sents, seed)
    usable = len(batches) - len(batches) % dist.world
    return batches[dist.rank : usable : dist.world]


def _next_group(run: Run, batches: list[list[int]]) -> tuple[list[Batch], list[list[int]]]:
    """The next ``accum_steps`` batches, moving on to the next epoch when this one is used up."""
    split: EncodedSplit = run.corpus.encoded["train"]
    group, progress = [], run.progress
    while len(group) < run.cfg.train.accum_steps:
        if progress.batch_in_epoch >= len(batches):
            progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
            batches = _epoch_batches(run)
        group.append(collate(split, batches[progress.batch_in_epoch]).to(run.device))
        progress.batch_in_epoch += 1
    return group, batches


def _log_window(run: Run, window: dict, lr: float, grad_norm: float, bar: tqdm) -> None:
    """Training scalars over the updates since the last report, and the progress bar's figures."""
    speed = run.dist.world * window["tokens"] / max(time.perf_counter() - window["start"], 1e-9)
    loss = window["loss"] / max(window["tokens"], 1)
    run.log.train_scalars(run.progress.step, loss, lr, grad_norm, speed)
    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{speed:,.0f}", lr=f"{lr:.2e}", refresh=False)
    window.update(tokens=0, loss=0.0, start=time.perf_counter())


def train_step(run: Run, group: list[Batch]) -> tuple[float, int, float]:
    """One update from ``group`` (accumulated batches): (loss per token, tokens, gradient norm).

    The loss is normalized by the real target tokens of the whole group, so accumulating k
    batches equals one batch k times as large. Nothing is applied when the loss or the
    gradient is not finite: the caller decides whether to stop or skip.
    """
    tc = run.cfg.train
    tokens = sum(batch.n_tgt_tokens for batch in group)
    run.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for index, batch in enumerate(group):
        tgt_in = batch.tgt_in
        if tc.sampling_prob:
            tgt_in = sampled_inputs(run.model, batch, tc.sampling_prob)
        last = index == len(group) - 1
        sync = nullcontext() if last or not run.dist.active else run.objective.no_sync()
        with sync:
            with autocast(run.device, run.precision):
                out = run.objective(
                    batch.src, batch.src_lens, tgt_in, batch.tgt_out, tc.label_smoothing
                )
                loss = out.loss / tokens
            run.scaler.scale(loss).backward()
        total += loss.item()
    run.scaler.unscale_(run.optimizer)
    params = [p for p in run.model.parameters() if p.grad is not None]
    max_norm = tc.clip_norm if tc.clip_norm > 0 else float("inf")
    grad_norm = float(nn.utils.clip_grad_norm_(params, max_norm))
    if torch.isfinite(torch.tensor([total, grad_norm])).all():
        run.scaler.step(run.optimizer)
    run.scaler.update()
    return total, tokens, grad_norm


def _validate_and_save(run: Run) -> str | None:
    """Validate, log, write ``last`` (and ``best`` on improvement); returns an early-stop reason."""
    tc, progress = run.cfg.train, run.progress
    result = validate(
        run.model, run.corpus, run.cfg.decode, tc.val_sentences, tc.plot_sentences, run.device
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
    if not run.dist.is_main:
        return
    optimizer = run.optimizer if full else None
    progress = asdict(run.progress)
    payload = training_payload(
        run.cfg, run.model, run.corpus.vocabs, progress, optimizer, run.schedule.state_dict()
    )
    if full:
        payload["scaler"] = run.scaler.state_dict()
    save_checkpoint(payload, run.log.dir / CHECKPOINT_DIR / name)
