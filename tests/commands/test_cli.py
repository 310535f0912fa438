"""The console scripts as a user runs them: subprocesses, exit codes, messages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import MULTI30K_RAW, REPO, run_command, write_text

# per command: the groups it composes, groups it must not show, and one option of its own
COMMANDS = {
    "prepare": (
        ["data: files, generated, hf, multi30k"],
        ["model", "train", "decode"],
        "data.vocab_size=300",
    ),
    "train": (
        ["data: files, generated, hf, multi30k", "experiment: demo"],
        [],
        "model.attention=dot",
    ),
    "translate": (["decode: default"], ["data", "model", "train"], "decode.beam_size=3"),
    "evaluate": (["decode: default"], ["data", "model", "train"], "decode.beam_size=3"),
    "average": (["nmt-average run="], ["data", "model", "train", "decode"], "last=3"),
}


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_every_script_prints_its_own_help_and_job_config(script):
    groups, absent, option = COMMANDS[script]
    shown = run_command(script, "--help")
    assert shown.returncode == 0
    assert all(group in shown.stdout for group in groups)
    lines = shown.stdout.splitlines()
    assert not [line for line in lines if line.split(":")[0] in absent], "another command's options"
    job = run_command(script, "--cfg", "job", option)
    key, value = option.rsplit("=", 1)
    assert job.returncode == 0 and f"{key.split('.')[-1]}: {value}" in job.stdout


@pytest.mark.parametrize(
    ("script", "option"),
    [
        ("translate", "model.attention=dot"),
        ("evaluate", "train.lr=1"),
        ("prepare", "decode.beam_size=2"),
    ],
)
def test_an_option_the_command_does_not_have_is_refused_by_name(script, option):
    result = run_command(
        script, option, "checkpoint=nowhere" if script != "prepare" else "data.vocab_size=9"
    )
    assert result.returncode != 0
    assert f"Could not override '{option.split('=')[0]}'" in result.stderr


def test_search_options_not_given_are_the_checkpoints(trained_run, tmp_path):
    """trained_run validated with beam 3: that is the search, unless the command line says."""
    import json

    report = tmp_path / "evaluation.json"
    shown = run_command(
        "evaluate", f"checkpoint={trained_run}", f"report={report}", "decode.alpha=0.5"
    )
    assert shown.returncode == 0, shown.stderr
    decode = json.loads(report.read_text())["decode"]
    assert (decode["beam_size"], decode["alpha"], decode["device"]) == (3, 0.5, "auto")
    assert "(beam 3, alpha 0.5, beta 0)" in shown.stdout
    wide = run_command("translate", f"checkpoint={trained_run}", "decode.n_best=4", stdin="a\n")
    assert wide.returncode != 0
    assert "decode.n_best=4 exceeds decode.beam_size=3" in wide.stderr
    given = run_command(
        "translate",
        f"checkpoint={trained_run}",
        "decode.n_best=4",
        "decode.beam_size=4",
        f"write_nbest={tmp_path / 'nbest'}",
        stdin="the cat sleeps .\n",
    )
    assert given.returncode == 0, given.stderr
    assert len((tmp_path / "nbest").read_text().splitlines()) == 4


def test_prepare_on_mismatched_files_fails_naming_both(tmp_path):
    write_text(tmp_path / "train.en", ["a", "b", "c"])
    write_text(tmp_path / "train.de", ["x", "y"])
    result = run_command("prepare", "data=files", f"data.root={tmp_path}", cwd=tmp_path)
    assert result.returncode != 0
    assert "train.en has 3 lines" in result.stderr and "train.de has 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_prepare_rejects_a_misspelled_key(tmp_path):
    result = run_command("prepare", "data.vocab_sise=10", cwd=tmp_path)
    assert result.returncode != 0 and "vocab_sise" in result.stderr


def test_prepare_reports_statistics_of_the_generated_corpus(tmp_path):
    result = run_command(
        "prepare", "data.generated_sizes=[300,40,40]", "data.vocab_size=300", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "vocabulary: trained" in result.stdout
    for split in ("train", "valid", "test"):
        assert f"\n{split} " in result.stdout
    assert not (tmp_path / "outputs").exists()  # nmt-prepare leaves no run directory
    again = run_command(
        "prepare", "data.generated_sizes=[300,40,40]", "data.vocab_size=300", cwd=tmp_path
    )
    assert "vocabulary: reused" in again.stdout


@pytest.mark.skipif(not MULTI30K_RAW.is_dir(), reason="../shared/data/multi30k is not present")
def test_prepare_multi30k_local_copy(tmp_path):
    result = run_command("prepare", "data=multi30k", f"data.root={MULTI30K_RAW}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test_2016_flickr" in result.stdout
    assert "loaded train: 28,998 pairs" in result.stdout  # 29,000 less 2 with a length ratio > 3


def test_config_dir_prefers_the_copy_a_wheel_ships(tmp_path):
    from nmt.commands.cli import config_dir

    package = tmp_path / "site-packages" / "nmt"
    (package / "configs").mkdir(parents=True)
    assert config_dir(package) == str(tmp_path / "site-packages" / "configs")  # no copy: checkout
    (package / "configs" / "train.yaml").write_text("defaults: []\n")
    assert config_dir(package) == str(package / "configs")


def test_pyproject_lists_every_package_and_ships_every_config():
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "nmt").rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk | {"nmt.configs"}
    assert setuptools["package-dir"] == {"nmt.configs": "configs"}
    assert sorted(setuptools["package-data"]["nmt.configs"]) == ["*.yaml", "*/*.yaml"]
    depths = {
        len(p.relative_to(REPO / "configs").parts) for p in (REPO / "configs").rglob("*.yaml")
    }
    assert depths == {1, 2}  # what those globs ship: the primary configs and one level of groups


@pytest.mark.slow
def test_the_wheel_carries_the_config_tree(tmp_path):
    """`pip install .` (not -e) must find the configs: they ship as nmt/configs/."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"  # a copy, so the build leaves no build/ in the checkout
    for name in ("nmt", "configs"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("nmt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "nmt/configs/" + str(p.relative_to(REPO / "configs"))
        for p in (REPO / "configs").rglob("*.yaml")
    }
    assert "nmt/configs/train.yaml" in expected and expected <= names
