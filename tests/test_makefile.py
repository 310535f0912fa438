"""The Makefile's set-up logic, as `make` itself reads it (dry runs; nothing is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    clean.pop("MAKEFLAGS", None)
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_an_active_env_everything_runs_in_the_project_venv(tmp_path):
    # -B: plan every step, as on a fresh clone; -n: print them without running any
    plan = make("-Bn", "test").stdout
    assert "python3 -m venv .venv" in plan
    assert '.venv/bin/python -m pip install -e ".[dev]"' in plan
    assert ".venv/bin/python -m pytest" in plan


@pytest.mark.parametrize("variable", ["VIRTUAL_ENV", "CONDA_PREFIX"])
def test_an_active_env_is_used_as_it_is(tmp_path, variable):
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").touch()
    plan = make("-n", "test", **{variable: str(env)}).stdout
    assert "-m venv" not in plan
    assert f'{env}/bin/python -m pip install -e ".[dev]"' in plan
    assert f"{env}/bin/python -m pytest" in plan


def test_installing_is_skipped_until_pyproject_changes(tmp_path):
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").touch()
    (env / ".nmt-installed").touch()  # newer than pyproject.toml: installed
    assert "pip install" not in make("-n", "test", VIRTUAL_ENV=str(env)).stdout
    os.utime(env / ".nmt-installed", (0, 0))  # older than pyproject.toml: install again
    assert "pip install" in make("-n", "test", VIRTUAL_ENV=str(env)).stdout


def test_a_python_without_venv_gets_the_apt_command(tmp_path):
    result = make("install", "PYTHON=false", VIRTUAL_ENV=str(tmp_path / "env"))
    assert result.returncode != 0
    assert "sudo apt-get install python3-venv" in result.stdout
    assert not (tmp_path / "env").exists()


def test_the_torch_index_is_passed_only_when_given(tmp_path):
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").touch()
    plain = make("-n", "install", VIRTUAL_ENV=str(env)).stdout
    assert '-m pip install "torch==2.13.0"' in plain and "--index-url" not in plain
    cpu = make("-n", "install", "TORCH_INDEX=https://example.invalid/cpu", VIRTUAL_ENV=str(env))
    assert '"torch==2.13.0" --index-url https://example.invalid/cpu' in cpu.stdout
