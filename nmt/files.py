"""Files that are complete or absent: written under a temporary name, made durable, renamed.

A kill at any moment leaves the previous file (or none), never half of one. The data and then the
directory entry are fsynced, so a file reported as saved survives a power loss. Files get the
permissions the umask gives any new file (``tempfile`` alone makes them 0600, which locks
teammates out of a shared run directory). Temporary names are ``.<name>.<random>.tmp``, so what a
killed writer leaves behind can be found and removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TEMP_SUFFIX = ".tmp"


def _file_mode() -> int:
    """0666 minus the process umask: what ``open(path, "w")`` would have created."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (its entry, not only its data)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: Path | str, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Yield a handle to a temporary file beside ``path``; it becomes ``path`` only when the
    block ends without an exception (otherwise it is removed and ``path`` is left as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_write(path) as handle:
        handle.write(data)


def write_text(path: Path | str, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def remove_temporaries(directory: Path, name: str) -> list[Path]:
    """Delete the temporaries of ``directory/name`` that a killed writer left; returns them.

    Only for files one process writes (a run's checkpoints on rank 0): another writer's
    temporary in flight would be removed too.
    """
    stale = sorted(Path(directory).glob(f".{name}.*{TEMP_SUFFIX}"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
