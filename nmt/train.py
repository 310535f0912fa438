"""The training loop, read top to bottom: set up, then one ``for`` over updates.

``train`` owns the data, the model, the optimizer and the log writer; the model never logs. A run
stops at ``max_steps``, ``max_epochs``, ``max_time``, early stopping, SIGINT/SIGTERM, or a
non-finite loss, and always leaves a loadable ``last`` checkpoint (written atomically).
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

import nmt
from nmt.batching import Batch, collate, epoch_batches
from nmt.checkpoint import CHECKPOINT_DIR, load_checkpoint, rotate_step_checkpoints, save_checkpoint
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig, parse_duration
from nmt.distributed import Distributed, all_agree, setup_distributed
from nmt.model import Seq2Seq, build_model, count_parameters
from nmt.optim import HIGHER_IS_BETTER, LearningRate, build_optimizer
from nmt.prepare import PreparedCorpus, prepare
from nmt.run_log import RunLog
from nmt.tokenizer import Tokenizer, Vocabularies
from nmt.validate import ValidationResult, token_loss, validate

log = logging.getLogger("nmt")


@dataclass
class TrainResult:
    """What a finished run hands back to its caller (scripts, tests)."""

    model: Seq2Seq
    progress: Progress
    validation: ValidationResult | None
    stop_reason: str


@dataclass
class Progress:
    """Counters a checkpoint carries so a resumed run continues exactly where it stopped."""

    step: int = 0  # updates done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch already consumed
    best_value: float | None = None
    best_step: int = 0
    bad_validations: int = 0  # since the best, for early stopping
    tgt_tokens: int = 0


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each update."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous = {}

    def __enter__(self) -> StopRequested:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def pick_device(name: str, dist: Distributed) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA device is available")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", dist.local_rank)


def autocast(device: torch.device, precision: str):
    """Mixed precision by config: bf16 on CPU or CUDA, fp16 on CUDA only."""
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("train.precision=fp16 needs CUDA; use bf16 on the CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def train(cfg: Config, run_dir: Path) -> TrainResult:
    """Train the configured model, writing checkpoints and TensorBoard logs under ``run_dir``."""
    dist = setup_distributed(cfg.train.device)
    device = pick_device(cfg.train.device, dist)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    resumed = load_checkpoint(cfg.train.resume, prefer="last") if cfg.train.resume else None
    if resumed is not None:
        cfg = _config_for_resume(cfg, resumed)
    random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    vocabs = _vocabs_from(resumed) if resumed else None
    corpus = prepare(cfg.data, ["valid"], log=log.info, vocabs=vocabs)
    model = build_model(cfg.model, len(corpus.vocabs.src), len(corpus.vocabs.tgt)).to(device)
    log.info(
        f"model: {count_parameters(model):,} parameters ({cfg.model.rnn} encoder, "
        f"{cfg.model.decoder} decoder, {cfg.model.attention} attention) on {device}"
    )
    optimizer, schedule, progress = (
        build_optimizer(model, cfg.train),
        LearningRate(cfg.train),
        Progress(),
    )
    if resumed is not None:
        progress = _restore(resumed, model, optimizer, schedule)
        log.info(f"resumed from {resumed['path']} at step {progress.step}")
    ddp_model = dist.wrap(model)
    run_log = RunLog(run_dir, enabled=dist.is_main)
    try:
        with StopRequested() as stop:
            last, reason = _loop(
                cfg,
                model,
                ddp_model,
                optimizer,
                schedule,
                progress,
                corpus,
                run_log,
                dist,
                device,
                stop,
            )
    finally:
        run_log.close()
        dist.close()
    return TrainResult(model, progress, last, reason)


def _config_for_resume(cfg: Config, resumed: dict) -> Config:
    """Data and model settings come from the checkpoint; the training and decode ones from now."""
    saved = resumed["config"]
    data, model = DataConfig(**saved["data"]), ModelConfig(**saved["model"])
    for name, now, then in (("data", cfg.data, data), ("model", cfg.model, model)):
        if now != then:
            log.warning(f"resuming: using the checkpoint's {name} settings, not the command line's")
    return replace(cfg, data=data, model=model)


def _vocabs_from(resumed: dict) -> Vocabularies:
    src = Tokenizer(resumed["vocab"]["src"])
    return Vocabularies(
        src, src if resumed["vocab"]["joint"] else Tokenizer(resumed["vocab"]["tgt"])
    )


def _restore(resumed: dict, model: nn.Module, optimizer, schedule: LearningRate) -> Progress:
    model.load_state_dict(resumed["model"])
    optimizer.load_state_dict(resumed["optimizer"])
    schedule.load_state_dict(resumed["schedule"])
    rng = resumed["rng"]
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return Progress(**resumed["progress"])


def _loop(
    cfg: Config,
    model: Seq2Seq,
    ddp_model: nn.Module,
    optimizer,
    schedule: LearningRate,
    progress: Progress,
    corpus: PreparedCorpus,
    run_log: RunLog,
    dist: Distributed,
    device: torch.device,
    stop: StopRequested,
) -> tuple[ValidationResult | None, str]:
    tc = cfg.train
    deadline = nmt.STARTED_AT + parse_duration(tc.max_time) if tc.max_time else None
    train_split = corpus.encoded["train"]
    batches = _epoch(cfg, train_split, progress.epoch, dist)
    bar = tqdm(
        total=tc.max_steps,
        initial=progress.step,
        disable=not (tc.progress and dist.is_main),
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    window_tokens, window_loss, window_start, last = 0, 0.0, time.perf_counter(), None
    reason = None
    while reason is None:
        group = []
        while len(group) < tc.accum_steps:
            if progress.batch_in_epoch >= len(batches):
                progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
                batches = _epoch(cfg, train_split, progress.epoch, dist)
            group.append(collate(train_split, batches[progress.batch_in_epoch]).to(device))
            progress.batch_in_epoch += 1
        lr = schedule.apply(optimizer, progress.step + 1)
        loss, tokens, grad_norm = train_step(model, ddp_model, optimizer, group, tc, device)
        if not all_agree(dist, torch.isfinite(torch.tensor([loss, grad_norm])).all().item()):
            if tc.nonfinite == "stop":
                reason = f"non-finite loss or gradient at step {progress.step + 1}"
                break
            log.warning(f"skipping update {progress.step + 1}: non-finite loss or gradient")
            continue
        progress.step += 1
        progress.tgt_tokens += tokens
        window_tokens, window_loss = window_tokens + tokens, window_loss + loss * tokens
        bar.update(1)
        if progress.step % tc.log_every == 0:
            elapsed = time.perf_counter() - window_start
            speed = dist.world * window_tokens / max(elapsed, 1e-9)
            run_log.train_scalars(progress.step, window_loss / window_tokens, lr, grad_norm, speed)
            bar.set_postfix(
                loss=f"{window_loss / window_tokens:.3f}", tok_s=f"{speed:,.0f}", lr=f"{lr:.2e}"
            )
            window_tokens, window_loss, window_start = 0, 0.0, time.perf_counter()
        reason = _stop_reason(tc, progress, deadline, stop, dist)
        if progress.step % tc.val_every == 0 or reason is not None:
            last, early = _validate_and_save(
                cfg, model, optimizer, schedule, progress, corpus, run_log, dist, device
            )
            reason = reason or early
    bar.close()
    if reason.startswith("non-finite"):
        log.error(f"stopping: {reason}; the best checkpoint is left untouched")
        _save(
            cfg,
            model,
            optimizer,
            schedule,
            progress,
            corpus,
            run_log.dir / CHECKPOINT_DIR / "last.pt",
            dist,
        )
        raise FloatingPointError(reason)
    log.info(
        f"stopped after {progress.step:,} updates ({progress.epoch} full epochs, "
        f"{progress.tgt_tokens:,} target tokens): {reason}"
    )
    run_log.finish(cfg, progress, last)
    return last, reason


def _epoch(cfg: Config, split, epoch: int, dist: Distributed) -> list[list[int]]:
    """This rank's batches of ``epoch``: shuffled by (seed, epoch), equal counts on every rank."""
    batches = epoch_batches(
        split, cfg.data.batch_tokens, cfg.data.batch_sents, seed=cfg.train.seed * 100_003 + epoch
    )
    usable = len(batches) - len(batches) % dist.world
    return batches[dist.rank : usable : dist.world]


def _stop_reason(
    tc: TrainConfig,
    progress: Progress,
    deadline: float | None,
    stop: StopRequested,
    dist: Distributed,
) -> str | None:
    if progress.step >= tc.max_steps:
        return f"reached train.max_steps={tc.max_steps}"
    if tc.max_epochs and progress.epoch >= tc.max_epochs:
        return f"reached train.max_epochs={tc.max_epochs}"
    if deadline is not None and not all_agree(dist, time.monotonic() < deadline):
        return f"train.max_time={tc.max_time} spent"
    if not all_agree(dist, stop.reason is None):
        return f"received {stop.reason or 'a stop signal on another rank'}"
    return None


def train_step(
    model: Seq2Seq,
    ddp_model: nn.Module,
    optimizer,
    group: list[Batch],
    tc: TrainConfig,
    device: torch.device,
) -> tuple[float, int, float]:
    """One update from ``group`` (accumulated batches): (loss per token, tokens, gradient norm).

    The loss is normalized by the real target tokens of the whole group, so accumulating k
    batches equals one batch k times as large. Nothing is applied when the loss or the
    gradient is not finite: the caller decides whether to stop or skip.
    """
    tokens = sum(batch.n_tgt_tokens for batch in group)
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for index, batch in enumerate(group):
        tgt_in = (
            _sample_inputs(model, batch, tc.sampling_prob) if tc.sampling_prob else batch.tgt_in
        )
        sync = (
            ddp_model.no_sync()
            if index < len(group) - 1 and ddp_model is not model
            else nullcontext()
        )
        with sync, autocast(device, tc.precision):
            out = ddp_model(batch.src, batch.src_lens, tgt_in)
            loss = token_loss(out.logits, batch.tgt_out, tc.label_smoothing) / tokens
        loss.backward()
        total += loss.item()
    params = [p for p in model.parameters() if p.grad is not None]
    if tc.clip_norm > 0:
        grad_norm = float(nn.utils.clip_grad_norm_(params, tc.clip_norm))
    else:
        grad_norm = float(torch.norm(torch.stack([p.grad.norm() for p in params])))
    if torch.isfinite(torch.tensor([total, grad_norm])).all():
        optimizer.step()
    return total, tokens, grad_norm


@torch.no_grad()
def _sample_inputs(model: Seq2Seq, batch: Batch, prob: float) -> torch.Tensor:
    """Scheduled sampling, parallel form (Duckworth et al., 2019): replace each gold input token
    (not BOS) with the model's own greedy prediction for that position with probability ``prob``.
    One extra teacher-forced pass; no step-by-step decoding."""
    predicted = model(batch.src, batch.src_lens, batch.tgt_in).logits.argmax(-1)  # (B,T)
    swap = torch.rand(batch.tgt_in.shape, device=batch.tgt_in.device) < prob
    swap[:, 0] = False
    swap &= batch.tgt_in != 0
    shifted = torch.cat([batch.tgt_in[:, :1], predicted[:, :-1]], dim=1)
    return torch.where(swap, shifted, batch.tgt_in)


def _validate_and_save(
    cfg: Config,
    model: Seq2Seq,
    optimizer,
    schedule: LearningRate,
    progress: Progress,
    corpus: PreparedCorpus,
    run_log: RunLog,
    dist: Distributed,
    device: torch.device,
) -> tuple[ValidationResult, str | None]:
    """Validate, log, write ``last`` (and ``best`` when the metric improved); maybe stop early."""
    tc, valid = cfg.train, corpus.raw["valid"]
    result = validate(
        model,
        corpus.encoded["valid"],
        valid.src,
        valid.tgt,
        corpus.vocabs,
        cfg.decode,
        tc.val_sentences,
        tc.plot_sentences,
        device,
    )
    value = result.metric(tc.metric)
    schedule.validated(value)
    best = progress.best_value
    improved = best is None or (value > best if HIGHER_IS_BETTER[tc.metric] else value < best)
    if improved:
        progress.best_value, progress.best_step, progress.bad_validations = value, progress.step, 0
    else:
        progress.bad_validations += 1
    run_log.validation(progress.step, result, improved, progress)
    directory = run_log.dir / CHECKPOINT_DIR
    _save(cfg, model, optimizer, schedule, progress, corpus, directory / "last.pt", dist)
    if improved:
        _save(cfg, model, None, schedule, progress, corpus, directory / "best.pt", dist)
    if tc.keep_checkpoints:
        _save(
            cfg,
            model,
            None,
            schedule,
            progress,
            corpus,
            directory / f"step_{progress.step}.pt",
            dist,
        )
        if dist.is_main:
            rotate_step_checkpoints(directory, tc.keep_checkpoints)
    if tc.patience and progress.bad_validations >= tc.patience:
        return result, (
            f"early stopping: no {tc.metric} improvement in {tc.patience} "
            f"validations (best {progress.best_value:.2f} at step {progress.best_step})"
        )
    return result, None


def _save(
    cfg: Config,
    model: Seq2Seq,
    optimizer,
    schedule: LearningRate,
    progress: Progress,
    corpus: PreparedCorpus,
    path: Path,
    dist: Distributed,
) -> None:
    """Write a self-describing checkpoint (rank 0 only); ``optimizer=None`` for weights only."""
    if not dist.is_main:
        return
    payload = {
        "model": model.state_dict(),
        "config": asdict(cfg),
        "vocab": {
            "src": corpus.vocabs.src.model_proto,
            "tgt": corpus.vocabs.tgt.model_proto,
            "joint": corpus.vocabs.joint,
        },
        "progress": asdict(progress),
    }
    if optimizer is not None:
        payload.update(
            optimizer=optimizer.state_dict(),
            schedule=schedule.state_dict(),
            rng={
                "python": random.getstate(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        )
    save_checkpoint(payload, path)
