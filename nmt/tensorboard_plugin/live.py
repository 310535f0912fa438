"""The Attention tab's "what if" box: translate typed text with a run's best checkpoint.

Safe by construction: the checkpoint is found from the run's own folder, never from a path in the
request, and must lie under TensorBoard's logdir; input length and the forced prefix are bounded;
one translation runs at a time (another request meanwhile gets "busy", not a queue). Torch is
imported on the first translation, so TensorBoard starts as fast as without the plugin.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

MAX_CHARS = 400
MAX_PIECES = 100
CHECKPOINT_NAMES = ("checkpoints/best.pt", "best.pt", "checkpoints/last.pt")
DEVICE_ENV = "NMT_EXPLORER_DEVICE"  # where live translations run (default cpu)


class LiveError(ValueError):
    """A live request that cannot be served; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LiveTranslator:
    """Loads a run's checkpoint once (again when the file changes) and translates with it."""

    def __init__(self, logdir: str | None) -> None:
        local = logdir and "://" not in logdir and Path(logdir).is_dir()
        self._root = Path(logdir).resolve() if local else None
        self._busy = threading.Lock()
        self._loaded: dict[Path, tuple[float, object]] = {}  # path -> (mtime, Translator)

    def checkpoint_for(self, run: str) -> Path | None:
        """The best checkpoint of ``run``: in the run's folder or one of its parents up to the
        logdir (training writes events to ``<run>/tensorboard``, checkpoints to
        ``<run>/checkpoints``). None when there is none, or the run is not under the logdir."""
        if self._root is None:
            return None
        folder = (self._root / run).resolve()
        if not folder.is_relative_to(self._root):
            return None
        for directory in [folder, *folder.parents]:
            if not directory.is_relative_to(self._root):
                break
            for name in CHECKPOINT_NAMES:
                path = (directory / name).resolve()
                if path.is_file() and path.is_relative_to(self._root):
                    return path
        return None

    def translate(self, run: str, text: str, forced: list[int]) -> dict:
        """The explorer record of ``text`` translated by ``run``'s checkpoint, its output
        starting with the target ids ``forced``."""
        text = text.strip()
        if not text:
            raise LiveError("type a sentence to translate")
        if len(text) > MAX_CHARS:
            raise LiveError(f"the text has {len(text)} characters; at most {MAX_CHARS}")
        if len(forced) > MAX_PIECES:
            raise LiveError(f"the forced prefix has {len(forced)} tokens; at most {MAX_PIECES}")
        path = self.checkpoint_for(run)
        if path is None:
            raise LiveError(
                f"run {run!r} has no checkpoint under the logdir: start tensorboard with "
                "--logdir on the run folder (the one holding checkpoints/) or above it",
                404,
            )
        if not self._busy.acquire(blocking=False):
            raise LiveError("busy with another translation; try again in a moment", 429)
        try:
            return self._translate(path, text, forced)
        finally:
            self._busy.release()

    def _translate(self, path: Path, text: str, forced: list[int]) -> dict:
        from nmt.inference.explore import explore

        translator = self._translator(path)
        vocabs = translator.vocabs
        pieces = len(vocabs.src.encode(text))
        if pieces > MAX_PIECES:
            raise LiveError(f"the text has {pieces} pieces; at most {MAX_PIECES} are translated")
        if any(not 0 <= token < len(vocabs.tgt) for token in forced):
            raise LiveError(f"a forced token lies outside the vocabulary of {len(vocabs.tgt)}")
        (record,) = explore(translator.model, vocabs, [text], translator.decode, forced=forced)
        return dict(record, checkpoint=str(path.relative_to(self._root)))

    def _translator(self, path: Path):
        from nmt.inference.decoding import load_translator

        mtime = path.stat().st_mtime
        cached = self._loaded.get(path)
        if cached is None or cached[0] != mtime:
            device = os.environ.get(DEVICE_ENV, "cpu")
            self._loaded = {path: (mtime, load_translator(str(path), device))}  # one model held
        return self._loaded[path][1]
