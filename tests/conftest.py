"""Shared fixtures: small corpora written to temporary directories, never committed."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from nmt.config import DataConfig

REPO = Path(__file__).resolve().parents[1]
MULTI30K_RAW = REPO.parent / "shared" / "data" / "multi30k" / "raw"

SRC_LINES = ["the cat sleeps .", "a dog runs fast .", "birds sing", "  ", "the end ."]
TGT_LINES = ["die Katze schläft .", "ein Hund rennt schnell .", "Vögel singen", "leer", "das Ende ."]


def write_text(path: Path, lines: list[str]) -> Path:
    """Write lines (newline-terminated) as UTF-8, gzipped when the name ends in .gz."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    """A `data=files` directory: train (gzipped), val and test in en/de."""
    for split, suffix in (("train", ".gz"), ("val", ""), ("test", "")):
        write_text(tmp_path / f"{split}.en{suffix}", SRC_LINES)
        write_text(tmp_path / f"{split}.de{suffix}", TGT_LINES)
    return tmp_path


@pytest.fixture
def generated_cfg(tmp_path: Path) -> DataConfig:
    """The generated corpus, small, cached under the test's temporary directory."""
    return DataConfig(generated_sizes=[600, 50, 50], cache_dir=str(tmp_path / "cache"),
                      vocab_size=400, batch_tokens=600, batch_sents=32)
