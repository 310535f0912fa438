"""train.ema: the moving average against a hand loop, what checkpoints hold, exact resume."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import REPO, tiny_config
from torch import nn

import nmt.training.train as train_module
from nmt.checkpoint import load_checkpoint
from nmt.config import ModelConfig
from nmt.inference.decoding import load_translator
from nmt.model import build_model
from nmt.training.ema import WeightAverage, ema_decay
from nmt.training.train import train


def test_the_average_follows_the_formula_step_by_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = WeightAverage(model, decay=0.9)
    expected = {
        n: t.clone().double() for n, t in model.state_dict().items() if t.is_floating_point()
    }
    for step in range(1, 6):
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param))
        average.update(step)
        decay = min(0.9, (1 + step) / (10 + step))
        for name, tensor in model.state_dict().items():
            if name in expected:
                expected[name] = decay * expected[name] + (1 - decay) * tensor.double()
    assert ema_decay(0.9, 1) == 2 / 11 and ema_decay(0.9, 1000) == 0.9
    state = average.state_dict()
    for name, value in expected.items():
        assert torch.allclose(state[name].double(), value, atol=1e-6), name
    assert torch.equal(state["1.num_batches_tracked"], model.state_dict()["1.num_batches_tracked"])


def test_tied_weights_are_averaged_once_and_saved_under_both_names():
    cfg = ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=16, tie_embeddings=True)
    model = build_model(cfg, 20, 20)
    average = WeightAverage(model, decay=0.5)
    assert "decoder.embed.weight" in average.shadow and "decoder.out.weight" not in average.shadow
    with torch.no_grad():
        model.decoder.embed.weight.add_(2.0)
    average.update(step=100)
    state = average.state_dict()
    assert torch.equal(state["decoder.out.weight"], state["decoder.embed.weight"])
    assert torch.allclose(state["decoder.out.weight"], model.decoder.out.weight - 1.0)


def test_applied_swaps_the_average_in_and_puts_the_trained_weights_back():
    model = nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.5)
    trained = {n: t.clone() for n, t in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(step=100)
    moved = {n: t.clone() for n, t in model.state_dict().items()}
    with average.applied():
        assert torch.allclose(model.weight, trained["weight"] + 0.5)
    assert all(torch.equal(model.state_dict()[n], moved[n]) for n in moved)


def test_validation_and_checkpoints_use_the_average_and_last_keeps_the_trained_weights(
    tmp_path, monkeypatch
):
    seen = []
    real_validate = train_module.validate

    def validate(model, *args):
        seen.append(model.decoder.out.bias.detach().clone())
        return real_validate(model, *args)

    monkeypatch.setattr(train_module, "validate", validate)
    result = train(tiny_config(tmp_path, ema=0.99), tmp_path / "run")
    last = load_checkpoint(tmp_path / "run", prefer="last")
    trained = result.model.state_dict()
    assert all(torch.equal(last["train_model"][n], t) for n, t in trained.items())
    bias = "decoder.out.bias"
    assert not torch.equal(last["model"][bias], trained[bias])
    assert torch.equal(seen[-1], last["model"][bias])  # the last validation saw the average
    assert "train_model" not in load_checkpoint(tmp_path / "run", prefer="best")


def test_resume_continues_the_weights_and_their_average_bit_for_bit(tmp_path):
    straight = tiny_config(tmp_path, max_steps=12, ema=0.95)
    train(straight, tmp_path / "straight")
    train(tiny_config(tmp_path, max_steps=6, ema=0.95), tmp_path / "first")
    resume = tiny_config(tmp_path, max_steps=12, ema=0.95, resume=str(tmp_path / "first"))
    train(resume, tmp_path / "second")
    a = load_checkpoint(tmp_path / "straight", prefer="last")
    b = load_checkpoint(tmp_path / "second", prefer="last")
    for key in ("model", "train_model"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)


def test_the_trained_weights_script_writes_them_as_a_checkpoint_of_their_own(tmp_path):
    result = train(tiny_config(tmp_path, ema=0.9), tmp_path / "run")
    out = tmp_path / "trained.pt"
    script = REPO / "scripts" / "trained_weights.py"
    subprocess.run([sys.executable, script, tmp_path / "run", out], check=True)
    trained = load_checkpoint(out)
    assert "train_model" not in trained and "optimizer" not in trained
    assert all(torch.equal(trained["model"][n], t) for n, t in result.model.state_dict().items())
    load_translator(str(out))  # and every command reads it as it reads any checkpoint
    refused = subprocess.run(
        [sys.executable, script, tmp_path / "run" / "checkpoints" / "best.pt", out],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "only the last.pt of a run trained with" in refused.stderr
