"""Shared fixtures: small corpora written to temporary directories, never committed."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from nmt.config import DataConfig

REPO = Path(__file__).resolve().parents[1]
MULTI30K_RAW = REPO.parent / "shared" / "data" / "multi30k" / "raw"

SRC_LINES = ["the cat sleeps .", "a dog runs fast .", "birds sing", "  ", "the end ."]
TGT_LINES = [
    "die Katze schläft .",
    "ein Hund rennt schnell .",
    "Vögel singen",
    "leer",
    "das Ende .",
]


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
    return DataConfig(
        generated_sizes=[600, 50, 50],
        cache_dir=str(tmp_path / "cache"),
        vocab_size=400,
        batch_tokens=600,
        batch_sents=32,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A small model trained on the generated corpus, shared by the decoding and evaluation tests.

    Big enough to learn the corpus (so BLEU and AER mean something), small enough for ~1 minute
    on 2 cores.
    """
    from nmt.config import Config, DecodeConfig, ModelConfig, TrainConfig
    from nmt.training.train import train

    root = tmp_path_factory.mktemp("trained")
    cfg = Config(
        data=DataConfig(
            generated_sizes=[4000, 100, 100],
            cache_dir=str(root / "cache"),
            vocab_size=1000,
            batch_tokens=3000,
        ),
        model=ModelConfig(emb_dim=64, enc_hidden=64, dec_hidden=128, dropout=0.1),
        train=TrainConfig(
            max_steps=TRAINED_STEPS,
            val_every=TRAINED_STEPS,
            progress=False,
            val_sentences=50,
            lr=3e-3,
        ),
        decode=DecodeConfig(beam_size=3),
    )
    train(cfg, root / "run")
    return root / "run"


TRAINED_STEPS = 600
