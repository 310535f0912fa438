"""nmt-average: checkpoint averaging, as a library call and as a command."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from nmt.checkpoint import CheckpointError, average_checkpoints, load_checkpoint, save_checkpoint
from nmt.inference.decoding import load_translator
from nmt.training.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("averaged")
    train(tiny_config(root, max_steps=9, val_every=3, keep_checkpoints=3), root / "run")
    return root / "run"


def test_averaging_copies_of_one_checkpoint_gives_that_checkpoint(run_dir):
    step = run_dir / "checkpoints" / "step_9.pt"
    averaged = average_checkpoints([step, step, step])
    for name, tensor in load_checkpoint(step)["model"].items():
        assert torch.equal(averaged["model"][name], tensor), name


def test_two_checkpoints_average_to_their_mean(run_dir):
    paths = [run_dir / "checkpoints" / f"step_{n}.pt" for n in (3, 6)]
    first, second = (load_checkpoint(p)["model"] for p in paths)
    averaged = average_checkpoints(paths)
    assert averaged["averaged_from"] == [str(p) for p in paths]
    for name, tensor in averaged["model"].items():
        torch.testing.assert_close(tensor, (first[name] + second[name]) / 2, rtol=0, atol=1e-7)
    assert not torch.equal(first["decoder.out.weight"], second["decoder.out.weight"])


def test_checkpoints_of_different_vocabularies_are_refused_naming_both(run_dir, tmp_path):
    payload = load_checkpoint(run_dir / "checkpoints" / "step_9.pt")
    payload["vocab"] = dict(payload["vocab"], joint=not payload["vocab"]["joint"])
    save_checkpoint(payload, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"step_9.pt and .*other.pt: their vocabulary"):
        average_checkpoints([run_dir / "checkpoints" / "step_9.pt", tmp_path / "other.pt"])


def test_the_command_averages_a_runs_newest_checkpoints(run_dir):
    from conftest import run_command

    result = run_command("average", f"run={run_dir}", "last=3")
    assert result.returncode == 0, result.stderr
    assert "averaged 3 checkpoints (step_3.pt, step_6.pt, step_9.pt)" in result.stdout
    translator = load_translator(str(run_dir / "checkpoints" / "average.pt"))
    expected = average_checkpoints([run_dir / "checkpoints" / f"step_{n}.pt" for n in (3, 6, 9)])
    for name, tensor in translator.model.state_dict().items():
        assert torch.equal(tensor, expected["model"][name]), name
    both = run_command("average", f"run={run_dir}", "checkpoints=[a.pt]")
    assert both.returncode != 0 and "not both" in both.stderr
