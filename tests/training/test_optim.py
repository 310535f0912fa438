"""Optimizer and learning-rate schedules: each shape against its formula, plateau cuts, state round
trip, the fused Adam against the reference loop."""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch

from nmt.config import TrainConfig
from nmt.device import Distributed
from nmt.training.optim import LearningRate, build_optimizer
from nmt.training.progress import budget_spent


def schedule(**options) -> LearningRate:
    return LearningRate(TrainConfig(lr=1e-3, min_lr=1e-5, max_steps=1000, **options))


def test_constant_with_linear_warmup():
    lr = schedule(schedule="constant", warmup_steps=10)
    assert lr.at(1) == pytest.approx(1e-4) and lr.at(5) == pytest.approx(5e-4)
    assert lr.at(10) == lr.at(500) == pytest.approx(1e-3)


def test_inverse_square_root_after_warmup():
    lr = schedule(schedule="inverse_sqrt", warmup_steps=100)
    assert lr.at(50) == pytest.approx(5e-4)
    assert lr.at(100) == pytest.approx(1e-3)
    assert lr.at(400) == pytest.approx(1e-3 * math.sqrt(100 / 400))


def test_linear_decay_reaches_min_lr_at_max_steps():
    lr = schedule(schedule="linear", warmup_steps=100)
    assert lr.at(100) == pytest.approx(1e-3)
    assert lr.at(550) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert lr.at(1000) == pytest.approx(1e-5) and lr.at(2000) == pytest.approx(1e-5)


def test_linear_decay_follows_the_time_budget_when_it_is_further_spent():
    lr = schedule(schedule="linear", warmup_steps=100, max_time="15m")
    middle = 1e-5 + (1e-3 - 1e-5) * 0.5
    assert lr.at(550) == pytest.approx(middle)  # steps 50 % spent, no time: as before
    assert lr.at(300, spent=0.5) == pytest.approx(middle)  # time 50 % spent, steps 22 %
    assert lr.at(775, spent=0.5) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.25)  # steps lead
    assert lr.at(300, spent=1.2) == pytest.approx(1e-5)
    assert lr.at(50, spent=0.9) == pytest.approx(5e-4)  # warm-up is counted in steps
    constant = schedule(schedule="constant", max_time="15m")
    assert constant.at(300, spent=0.9) == pytest.approx(1e-3)


def test_budget_spent_is_a_fraction_of_max_time_since_start():
    started = time.monotonic() - 30.0
    assert budget_spent(120.0, started, Distributed()) == pytest.approx(0.25, abs=0.01)
    assert budget_spent(None, started, Distributed()) == 0.0


def test_plateau_cuts_after_patience_and_never_below_min_lr():
    lr = schedule(schedule="plateau", plateau_factor=0.5, plateau_patience=1, metric="bleu")
    for value in (10.0, 12.0, 11.0):  # best 12, one bad validation: within patience
        lr.validated(value)
    assert lr.at(500) == pytest.approx(1e-3)
    lr.validated(11.5)  # second bad validation in a row: cut
    assert lr.at(500) == pytest.approx(5e-4)
    for _ in range(40):
        lr.validated(0.0)
    assert lr.at(500) == pytest.approx(1e-5)


def test_plateau_on_loss_treats_lower_as_better():
    lr = schedule(schedule="plateau", plateau_patience=0, metric="loss")
    lr.validated(2.0)
    lr.validated(1.5)
    assert lr.plateau_scale == 1.0
    lr.validated(1.7)
    assert lr.plateau_scale == 0.5


def test_state_round_trip_and_apply():
    lr = schedule(schedule="plateau", plateau_patience=0)
    lr.validated(5.0)
    lr.validated(4.0)
    restored = schedule(schedule="plateau", plateau_patience=0)
    restored.load_state_dict(lr.state_dict())
    assert restored.at(100) == lr.at(100)
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.01))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert restored.apply(optimizer, 100) == optimizer.param_groups[0]["lr"] == lr.at(100)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_the_fused_optimizer_steps_as_the_reference_one(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    reference = copy.deepcopy(model)
    optimizer = build_optimizer(model, TrainConfig(optimizer=name, lr=0.01, weight_decay=0.01))
    assert optimizer.defaults["fused"]
    plain_class = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    plain = plain_class(reference.parameters(), lr=0.01, weight_decay=0.01, foreach=False)
    for _ in range(5):
        x = torch.randn(4, 8)
        for net, opt in ((model, optimizer), (reference, plain)):
            opt.zero_grad()
            net(x).square().sum().backward()
            opt.step()
    for fused, loop in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-6)
