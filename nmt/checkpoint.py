"""Self-describing checkpoints, written atomically.

A checkpoint holds the weights, the resolved config, the tokenizer models, and (for ``last``) the
whole training state: optimizer, scheduler, RNG states, step and data position. So
``nmt-translate`` needs nothing but the file, and a resumed run continues bit for bit. Files are
written to a temporary name, synced and renamed, so a crash at any moment leaves the previous
checkpoint readable.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmt.config import Config
from nmt.data.tokenizer import Tokenizer, Vocabularies
from nmt.files import atomic_write

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or not one of ours; the message names the path."""


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` atomically and durably (``nmt.files.atomic_write``)."""
    with atomic_write(path) as handle:
        torch.save({"format_version": FORMAT_VERSION, **payload}, handle)


def resolve_checkpoint(location: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/{prefer}.pt`` (else last.pt)."""
    path = Path(location)
    if path.is_dir():
        names = dict.fromkeys((f"{prefer}.pt", "last.pt"))  # in order, once each
        for directory in (path / CHECKPOINT_DIR, path):
            for name in names:
                if (directory / name).is_file():
                    return directory / name
        wanted = " or ".join(f"{CHECKPOINT_DIR}/{name}" for name in names)
        raise CheckpointError(f"no checkpoint in {path} (looked for {wanted})")
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
    rng_states: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a checkpoint holds: weights, resolved config, tokenizers, counters; with
    ``optimizer``, also everything an exact resume needs (optimizer, schedule, and the RNG
    states of every rank, ``rng_states``, this process's by default)."""
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
        rng = rng_states or [rng_state()]
        payload.update(
            optimizer=optimizer.state_dict(), schedule=schedule, rng=rng[0], rng_per_rank=rng
        )
    return payload


def rng_state() -> dict[str, Any]:
    """This process's generators: Python's, torch's CPU one and its current CUDA device's."""
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None
    return {"python": random.getstate(), "torch": torch.get_rng_state(), "cuda": cuda}


def vocabularies_from(payload: dict[str, Any]) -> Vocabularies:
    """The tokenizers a checkpoint was trained with."""
    src = Tokenizer(payload["vocab"]["src"])
    joint = payload["vocab"]["joint"]
    return Vocabularies(src, src if joint else Tokenizer(payload["vocab"]["tgt"]))


def restore_rng(payload: dict[str, Any], rank: int = 0, world: int = 1) -> bool:
    """Put this rank's generators back where the checkpoint left them; False when the checkpoint
    was written by a different number of ranks and holds no state for this one."""
    states = payload.get("rng_per_rank") or [payload["rng"]]
    if len(states) != world and rank > 0:
        return False
    rng = states[rank] if len(states) == world else states[0]
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    cuda = rng.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, list):  # written before per-rank states: every device's
            torch.cuda.set_rng_state_all(cuda)
        else:
            torch.cuda.set_rng_state(cuda)
    return True


def average_checkpoints(paths: list[str | Path]) -> dict[str, Any]:
    """The weights of ``paths`` averaged with equal weights (in float64, cast back), in a
    weights-only checkpoint that otherwise is the last one's.

    Raises:
        CheckpointError: when the checkpoints differ in model configuration or vocabulary (the
            message names both files), or none is given.
    """
    if not paths:
        raise CheckpointError("no checkpoints to average")
    payloads = [load_checkpoint(path) for path in paths]
    first = payloads[0]
    parts = {
        "vocabulary": lambda p: p["vocab"],
        "model configuration": lambda p: p["config"]["model"],
    }
    for other in payloads[1:]:
        for what, part in parts.items():
            if part(first) != part(other):
                raise CheckpointError(
                    f"cannot average {first['path']} and {other['path']}: their {what} differs"
                )
    averaged = {}
    for name, tensor in first["model"].items():
        if tensor.is_floating_point():
            total = sum(p["model"][name].double() for p in payloads)
            averaged[name] = (total / len(payloads)).to(tensor.dtype)
        else:
            averaged[name] = payloads[-1]["model"][name]
    last = payloads[-1]
    result = {key: last[key] for key in ("config", "vocab", "progress", "shortlist") if key in last}
    return result | {
        "model": averaged,
        "averaged_from": [p["path"] for p in payloads],
        "format_version": FORMAT_VERSION,
    }
