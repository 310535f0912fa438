"""Training loop: resume, crash safety, signals, non-finite losses, TensorBoard, DDP, early stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import REPO, spawn_ranks, tiny_config

import nmt.device as device_module
import nmt.model.decoder as decoder_module
import nmt.training.train as train_module
import nmt.training.update as update_module
from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.model import Seq2SeqLoss
from nmt.training.scheduled_sampling import sampled_inputs
from nmt.training.train import train


def tiny_overrides(tmp_path: Path) -> list[str]:
    """``tiny_config``'s corpus and model as command-line overrides (no progress bar, 1 thread)."""
    return [
        "train.progress=false",
        "train.threads=1",
        "data.generated_sizes=[300,30,30]",
        "data.vocab_size=200",
        f"data.cache_dir={tmp_path / 'cache'}",
        "model.emb_dim=16",
        "model.enc_hidden=16",
        "model.dec_hidden=32",
    ]


def test_resume_continues_bit_for_bit(tmp_path):
    straight = train(tiny_config(tmp_path, max_steps=12), tmp_path / "straight")
    train(tiny_config(tmp_path, max_steps=6), tmp_path / "first")
    resumed = train(
        tiny_config(tmp_path, max_steps=12, resume=str(tmp_path / "first")), tmp_path / "second"
    )
    assert resumed.progress.step == straight.progress.step == 12
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items()
    ):
        assert torch.equal(a, b), name


def test_checkpoint_carries_everything_translation_needs(tmp_path):
    train(tiny_config(tmp_path), tmp_path / "run")
    best = load_checkpoint(tmp_path / "run")
    assert best["path"].endswith("best.pt")
    assert {"model", "config", "vocab", "progress"} <= set(best)
    last = load_checkpoint(tmp_path / "run", prefer="last")
    assert {"optimizer", "schedule", "rng"} <= set(last) and last["progress"]["step"] == 12


def test_keep_checkpoints_rotates_step_checkpoints(tmp_path):
    train(tiny_config(tmp_path, max_steps=12, val_every=3, keep_checkpoints=2), tmp_path / "run")
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert kept == ["step_12.pt", "step_9.pt"]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "step_9.pt")["progress"]["step"] == 9


def test_a_crash_while_writing_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}}, path)

    def crash_midway(obj, handle):
        handle.write(b"partial bytes of a checkpoint")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"model": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_a_non_finite_loss_stops_cleanly_and_keeps_the_best(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, max_steps=30)
    real_loss, calls = decoder_module.linear_cross_entropy, {"n": 0}

    def poisoned(*args):  # counts and poisons training's losses only, not validation's
        calls["n"] += torch.is_grad_enabled()
        loss = real_loss(*args)
        return loss * float("nan") if calls["n"] > 8 and torch.is_grad_enabled() else loss

    monkeypatch.setattr(decoder_module, "linear_cross_entropy", poisoned)
    with pytest.raises(FloatingPointError, match="non-finite loss or gradient at step 9"):
        train(cfg, tmp_path / "run")
    best = load_checkpoint(tmp_path / "run")
    last = load_checkpoint(tmp_path / "run", prefer="last")
    assert best["progress"]["step"] == 6 and last["progress"]["step"] == 8
    assert all(torch.isfinite(t).all() for t in last["model"].values())


def test_skip_mode_skips_non_finite_batches(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, max_steps=6, nonfinite="skip")
    real_loss, calls = decoder_module.linear_cross_entropy, {"n": 0}

    def poisoned(*args):  # counts and poisons training's losses only, not validation's
        calls["n"] += torch.is_grad_enabled()
        loss = real_loss(*args)
        return loss * float("inf") if calls["n"] == 3 and torch.is_grad_enabled() else loss

    monkeypatch.setattr(decoder_module, "linear_cross_entropy", poisoned)
    result = train(cfg, tmp_path / "run")
    assert result.progress.step == 6 and result.stop_reason.startswith("reached")


def test_early_stopping_triggers(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=200, val_every=2, metric="loss", patience=2, lr=1e-9)
    result = train(cfg, tmp_path / "run")
    assert result.stop_reason.startswith("early stopping") and result.progress.step < 200


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    """Two accumulated batches give the same update as both batches in one (no dropout)."""
    from nmt.data.batching import collate
    from nmt.data.prepare import prepare
    from nmt.device import Distributed
    from nmt.model import build_model
    from nmt.training.optim import LearningRate, build_optimizer
    from nmt.training.run_log import RunLog

    cfg = tiny_config(tmp_path, accum_steps=2)
    cfg = replace(cfg, model=replace(cfg.model, dropout=0.0))
    corpus = prepare(cfg.data, ["valid"], log=lambda _: None)
    split = corpus.encoded["train"]
    models = []
    for group in ([collate(split, [0, 1]), collate(split, [2, 3])], [collate(split, [0, 1, 2, 3])]):
        torch.manual_seed(0)
        model = build_model(cfg.model, len(corpus.vocabs.src), len(corpus.vocabs.tgt))
        run = train_module.Run(
            cfg,
            model,
            Seq2SeqLoss(model),
            build_optimizer(model, cfg.train),
            LearningRate(cfg.train),
            torch.amp.GradScaler("cpu", enabled=False),
            corpus,
            RunLog(tmp_path, enabled=False),
            Distributed(),
            torch.device("cpu"),
            "fp32",
        )
        train_module.train_step(run, group)
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_tensorboard_holds_scalars_heatmaps_context_and_text(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(tmp_path, max_steps=12, val_every=6)
    train(replace(cfg, model=replace(cfg.model, attention="multihead", heads=2)), tmp_path / "run")
    events = EventAccumulator(
        str(tmp_path / "run" / "tensorboard"),
        size_guidance={"images": 0, "scalars": 0, "histograms": 0, "tensors": 0},
    )
    events.Reload()
    tags = events.Tags()
    for tag in (
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "train/tgt_tokens_per_s",
        "valid/loss",
        "valid/ppl",
        "valid/bleu",
        "valid/chrf",
    ):
        assert tag in tags["scalars"], tag
    assert [e.step for e in events.Scalars("valid/loss")] == [6, 12]
    for tag in (
        "alignment/valid_0",
        "alignment/valid_1",
        "alignment_heads/valid_0",
        "context/valid_0",
    ):
        assert [e.step for e in events.Images(tag)] == [6, 12], tag
    assert {"attention/entropy", "context/values"} <= set(tags["histograms"])
    assert any(tag.startswith("samples") for tag in tags["tensors"])
    arrays = sorted((tmp_path / "run" / "attention").glob("valid_step*.npz"))
    assert [a.name for a in arrays] == ["valid_step0000006.npz", "valid_step0000012.npz"]


def _ddp_rank(rank: int, tmp_path: Path) -> None:
    result = train(
        tiny_config(tmp_path, max_steps=6, val_every=6, device="cpu"), tmp_path / f"rank{rank}"
    )
    torch.save(result.model.state_dict(), tmp_path / f"params{rank}.pt")


def test_ddp_with_two_gloo_processes_keeps_ranks_identical(tmp_path):
    spawn_ranks(_ddp_rank, 2, tmp_path)
    first = torch.load(tmp_path / "params0.pt")
    second = torch.load(tmp_path / "params1.pt")
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert (tmp_path / "rank0" / "checkpoints" / "last.pt").is_file()
    assert not (tmp_path / "rank1" / "checkpoints").exists()  # only rank 0 writes


def test_sigterm_saves_last_and_exits_cleanly(tmp_path):
    code = "import sys; from nmt.commands.cli import train; sys.argv[0] = 'nmt-train'; train()"
    args = [
        "data.generated_sizes=[300,30,30]",
        "data.vocab_size=200",
        "model.emb_dim=16",
        "model.enc_hidden=16",
        "model.dec_hidden=32",
        "train.max_steps=100000",
        "train.val_every=100000",
        "train.progress=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 120

    def started_training() -> bool:  # Hydra's job log names the model once training starts
        return any("parameters" in log.read_text() for log in (tmp_path / "run").glob("*.log"))

    while time.monotonic() < deadline and not started_training():
        time.sleep(0.5)
    assert started_training(), "nmt-train did not start training within 120 s"
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "received SIGTERM" in output
    last = load_checkpoint(tmp_path / "run", prefer="last")
    assert 0 < last["progress"]["step"] < 100000


def greedy_next_tokens(model, src, n: int, tgt_in) -> list[int]:
    """argmax p(y_t | gold y_<t) for one unpadded sentence, one ``decoder.step`` at a time."""
    enc = model.encode(src[None, :n], torch.tensor([n]))
    state = model.decoder.init_state(enc)
    tokens = []
    for y in tgt_in.tolist():
        out = model.decoder.step(torch.tensor([y]), state)
        state = out.state
        tokens.append(int(out.logits[0].argmax()))
    return tokens


def test_scheduled_sampling_feeds_the_models_own_predictions_but_never_for_bos_or_padding(
    tmp_path,
):
    from conftest import random_src, tiny_model

    from nmt.config import BOS_ID, PAD_ID
    from nmt.data.batching import Batch

    torch.manual_seed(0)
    model = tiny_model("luong")
    src_lens, tgt_lens = [5, 7, 3, 6] * 8, [6, 3, 8, 5] * 8
    src, lens = random_src(src_lens, seed=2)
    tgt, _ = random_src(tgt_lens, seed=3)
    tgt[:, 0] = BOS_ID
    batch = Batch(src, lens, tgt, tgt, torch.arange(len(src_lens)))
    real = tgt != PAD_ID
    expected = tgt.clone()  # position t+1 reads the prediction made at position t
    for b, (n, m) in enumerate(zip(src_lens, tgt_lens, strict=True)):
        expected[b, 1:m] = torch.tensor(greedy_next_tokens(model, src[b], n, tgt[b, :m])[:-1])
    differs = expected != tgt
    assert differs.sum() > 100  # an untrained model rarely predicts the random gold token
    assert torch.equal(sampled_inputs(model, batch, 0.0), tgt)
    assert torch.equal(sampled_inputs(model, batch, 1.0), expected)
    half = sampled_inputs(model, batch, 0.5)
    assert torch.all((half == tgt) | (half == expected))
    assert torch.all(half[:, 0] == BOS_ID) and torch.all(half[~real] == PAD_ID)
    swapped = (half != tgt).sum() / differs.sum()
    assert 0.4 < swapped < 0.6  # each position is swapped with probability 0.5
    cfg = tiny_config(tmp_path)
    result = train(
        replace(cfg, train=replace(cfg.train, sampling_prob=0.3, max_steps=4)), tmp_path / "run"
    )
    assert result.progress.step == 4


def test_bf16_autocast_trains_on_the_cpu_and_changes_the_arithmetic(tmp_path):
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = tiny_config(tmp_path / precision, max_steps=3, val_every=3, precision=precision)
        runs[precision] = train(cfg, tmp_path / precision / "run").model
    assert all(torch.isfinite(p).all() for p in runs["bf16"].parameters())
    # same seed, same batches: only bfloat16 matmuls can make the weights differ
    differences = [
        (a - b).abs().max().item()
        for a, b in zip(runs["fp32"].parameters(), runs["bf16"].parameters(), strict=True)
    ]
    assert max(differences) > 1e-4


@pytest.mark.parametrize(("flags", "chosen"), [(set(), "fp32"), ({"amx_bf16"}, "bf16")])
def test_auto_precision_is_resolved_for_the_cpu_and_logged(
    tmp_path, monkeypatch, caplog, flags, chosen
):
    monkeypatch.setattr(device_module, "cpu_flags", lambda: flags)
    used = []
    real_autocast = update_module.autocast
    monkeypatch.setattr(
        update_module, "autocast", lambda dev, prec: used.append(prec) or real_autocast(dev, prec)
    )
    with caplog.at_level("INFO", logger="nmt"):
        train(tiny_config(tmp_path, max_steps=2, val_every=2, precision="auto"), tmp_path / "run")
    assert used and set(used) == {chosen}
    assert f"on cpu, {chosen} (train.precision=auto)" in caplog.text
    # the checkpoint keeps "auto", so a resume on another machine chooses again
    assert load_checkpoint(tmp_path / "run")["config"]["train"]["precision"] == "auto"


def test_torchrun_launches_the_documented_command(tmp_path):
    """`torchrun --nproc_per_node 2 -m nmt ...` as the README gives it, on the gloo backend."""
    args = [
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "nmt",
        f"hydra.run.dir={tmp_path / 'run'}",
        "train.device=cpu",
        "train.max_steps=4",
        "train.val_every=4",
        *tiny_overrides(tmp_path),
    ]
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert load_checkpoint(tmp_path / "run", prefer="last")["progress"]["step"] == 4


def test_a_spent_time_budget_stops_after_one_update(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=1000, max_time="2s")
    result = train(cfg, tmp_path / "run", started_at=time.monotonic() - 10.0)
    assert result.progress.step == 1
    assert result.stop_reason == "train.max_time=2s spent"
    assert load_checkpoint(tmp_path / "run", prefer="last")["progress"]["step"] == 1


def test_every_multirun_job_gets_the_whole_time_budget(tmp_path):
    """Hydra runs the jobs of `nmt-train -m` in one process. The first job's budget counts from
    process start (start-up and data loading included), a later job's from its own start: here
    the process "started" 1,000 s ago, so the first job has no time left, the second all 60 s."""
    code = (
        "import sys, time; import nmt; nmt.STARTED_AT = time.monotonic() - 1000; "
        "from nmt.commands.cli import train; sys.argv[0] = 'nmt-train'; train()"
    )
    args = [
        "-m",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "train.seed=1,2",
        "train.max_time=60s",
        "train.max_steps=4",
        "train.val_every=4",
        *tiny_overrides(tmp_path),
    ]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = sorted((tmp_path / "sweep").glob("*/checkpoints/last.pt"))
    assert len(runs) == 2
    assert [load_checkpoint(run, prefer="last")["progress"]["step"] for run in runs] == [1, 4]
