"""Where a result came from: content hashes and versions, so two reports can be compared later.

Two evaluations are comparable when the same checkpoint translated the same source lines and was
scored against the same reference lines with the same metric signature; ``evaluation.json``
records a sha256 for each of these, plus the versions that produced the numbers.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

import sacrebleu
import torch

import nmt


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_lines(lines: Iterable[str]) -> str:
    """The hash of the text as read (one line each, newline-terminated): the same for a file and
    its .gz, or for a hub dataset and a local copy of it."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_revision(directory: Path = Path(nmt.__file__).parent) -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes); None outside a git checkout."""
    try:
        revision = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return revision + ("+dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    return {
        "nmt": nmt.__version__,
        "git": git_revision(),
        "torch": torch.__version__,
        "sacrebleu": sacrebleu.__version__,
    }
