"""Self-describing checkpoints, written atomically.

A checkpoint holds the weights, the resolved config, the tokenizer models, and (for ``last``) the
whole training state: optimizer, scheduler, RNG states, step and data position. So
``nmt-translate`` needs nothing but the file, and a resumed run continues bit for bit. Files are
written to a temporary name, synced and renamed, so a crash at any moment leaves the previous
checkpoint readable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or not one of ours; the message names the path."""


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            torch.save({"format_version": FORMAT_VERSION, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def resolve_checkpoint(location: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/{prefer}.pt`` (else last.pt)."""
    path = Path(location)
    if path.is_dir():
        for directory in (path / CHECKPOINT_DIR, path):
            for name in (f"{prefer}.pt", "last.pt"):
                if (directory / name).is_file():
                    return directory / name
        raise CheckpointError(
            f"no checkpoint in {path} (looked for {CHECKPOINT_DIR}/{prefer}.pt "
            f"and {CHECKPOINT_DIR}/last.pt)"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_checkpoint(location: str | Path, prefer: str = "best") -> dict[str, Any]:
    """Load a checkpoint onto the CPU; unreadable or foreign files raise CheckpointError."""
    path = resolve_checkpoint(location, prefer)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'corrupt file'})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an nmt checkpoint (format {FORMAT_VERSION})")
    payload["path"] = str(path)
    return payload


def rotate_step_checkpoints(directory: Path, keep: int) -> None:
    """Keep the ``keep`` newest ``step_*.pt`` files in ``directory``; 0 keeps none."""
    steps = sorted(directory.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for old in steps[: max(0, len(steps) - keep)]:
        old.unlink(missing_ok=True)
