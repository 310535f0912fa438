"""Self-describing checkpoints, written atomically.

A checkpoint holds the weights, the resolved config, the tokenizer models, and (for ``last``) the
whole training state: optimizer, scheduler, RNG states, step and data position. So
``nmt-translate`` needs nothing but the file, and a resumed run continues bit for bit. Files are
written to a temporary name, synced and renamed, so a crash at any moment leaves the previous
checkpoint readable.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmt.config import Config
from nmt.data.tokenizer import Tokenizer, Vocabularies

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


def training_payload(
    cfg: Config,
    model: nn.Module,
    vocabs: Vocabularies,
    progress: dict,
    optimizer: torch.optim.Optimizer | None = None,
    schedule: dict | None = None,
) -> dict[str, Any]:
    """What a checkpoint holds: weights, resolved config, tokenizers, counters; with
    ``optimizer``, also everything an exact resume needs (optimizer, schedule, RNG states)."""
    payload: dict[str, Any] = {
        "model": model.state_dict(),
        "config": asdict(cfg),
        "vocab": {
            "src": vocabs.src.model_proto,
            "tgt": vocabs.tgt.model_proto,
            "joint": vocabs.joint,
        },
        "progress": progress,
    }
    if optimizer is not None:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        payload.update(
            optimizer=optimizer.state_dict(),
            schedule=schedule,
            rng={"python": random.getstate(), "torch": torch.get_rng_state(), "cuda": cuda},
        )
    return payload


def vocabularies_from(payload: dict[str, Any]) -> Vocabularies:
    """The tokenizers a checkpoint was trained with."""
    src = Tokenizer(payload["vocab"]["src"])
    joint = payload["vocab"]["joint"]
    return Vocabularies(src, src if joint else Tokenizer(payload["vocab"]["tgt"]))


def restore_rng(payload: dict[str, Any]) -> None:
    """Put the random number generators back where the checkpoint left them."""
    rng = payload["rng"]
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
