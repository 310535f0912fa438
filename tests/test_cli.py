"""The console scripts as a user runs them: subprocesses, exit codes, messages."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import MULTI30K_RAW, REPO, write_text


def run(script: str, *args: str, cwd=None, stdin: str | None = None) -> subprocess.CompletedProcess:
    code = f"import sys; from nmt.cli import {script}; sys.argv[0] = 'nmt'; {script}()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        input=stdin,
        timeout=300,
    )


@pytest.mark.parametrize("script", ["prepare", "train", "translate", "evaluate"])
def test_every_script_prints_help_and_its_job_config(script):
    shown = run(script, "--help")
    assert shown.returncode == 0 and "data: files, generated, hf, multi30k" in shown.stdout
    job = run(script, "--cfg", "job", "model.attention=dot")
    assert job.returncode == 0 and "attention: dot" in job.stdout


def test_prepare_on_mismatched_files_fails_naming_both(tmp_path):
    write_text(tmp_path / "train.en", ["a", "b", "c"])
    write_text(tmp_path / "train.de", ["x", "y"])
    result = run("prepare", "data=files", f"data.root={tmp_path}", cwd=tmp_path)
    assert result.returncode != 0
    assert "train.en has 3 lines" in result.stderr and "train.de has 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_prepare_rejects_a_misspelled_key(tmp_path):
    result = run("prepare", "data.vocab_sise=10", cwd=tmp_path)
    assert result.returncode != 0 and "vocab_sise" in result.stderr


def test_prepare_reports_statistics_of_the_generated_corpus(tmp_path):
    result = run("prepare", "data.generated_sizes=[300,40,40]", "data.vocab_size=300", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "vocabulary: trained" in result.stdout
    for split in ("train", "valid", "test"):
        assert f"\n{split} " in result.stdout
    assert not (tmp_path / "outputs").exists()  # nmt-prepare leaves no run directory
    again = run("prepare", "data.generated_sizes=[300,40,40]", "data.vocab_size=300", cwd=tmp_path)
    assert "vocabulary: reused" in again.stdout


@pytest.mark.skipif(not MULTI30K_RAW.is_dir(), reason="../shared/data/multi30k is not present")
def test_prepare_multi30k_local_copy(tmp_path):
    result = run("prepare", "data=multi30k", f"data.root={MULTI30K_RAW}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test_2016_flickr" in result.stdout
    assert "loaded train: 28,998 pairs" in result.stdout  # 29,000 less 2 with a length ratio > 3
