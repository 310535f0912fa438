"""Shared fixtures: small corpora written to temporary directories, never committed."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from nmt.config import (
    EOS_ID,
    PAD_ID,
    Config,
    DataConfig,
    DecodeConfig,
    ModelConfig,
    TrainConfig,
)
from nmt.model import build_model

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


@pytest.fixture(scope="session")
def explored_run(tmp_path_factory) -> tuple[Path, Config]:
    """A tiny multi-head run that logged explorer records at steps 6 and 12 (seconds to train)."""
    from dataclasses import replace

    from nmt.training.train import train

    root = tmp_path_factory.mktemp("explored")
    cfg = tiny_config(root, explore_sentences=6)
    cfg = replace(cfg, model=replace(cfg.model, attention="multihead", heads=2))
    train(cfg, root / "run")
    return root / "run", cfg


# Tiny models and configs shared by the search, training and CUDA tests.
VOCAB = 20
SRC_LENS = [7, 3, 5, 9, 4]


def tiny_model(
    decoder: str = "luong",
    attention: str = "bahdanau",
    vocab: int = VOCAB,
    eos_bias: float = 0.0,
    seed: int = 0,
):
    """A seeded eval-mode model, its weights doubled so its distributions vary with the state.

    At initialization the output distribution hardly depends on the state; sharpened, this
    model ends some hypotheses with EOS and runs others to the maximum length.
    """
    torch.manual_seed(seed)
    cfg = ModelConfig(
        emb_dim=16,
        enc_hidden=16,
        dec_hidden=32,
        attn_dim=16,
        heads=2,
        dropout=0.0,
        decoder=decoder,
        attention=attention,
    )
    model = build_model(cfg, vocab, vocab).eval()
    with torch.no_grad():
        for param in model.parameters():
            param *= 2.0
        model.decoder.out.bias[EOS_ID] += eos_bias
    return model


def random_src(lens: list[int], vocab: int = VOCAB, seed: int = 0):
    """(B,S) random ids ending with EOS, padded with PAD, as ``batching.collate`` makes them."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.full((len(lens), max(lens)), PAD_ID, dtype=torch.long)
    for b, n in enumerate(lens):
        src[b, : n - 1] = torch.randint(4, vocab, (n - 1,), generator=gen)
        src[b, n - 1] = EOS_ID
    return src, torch.tensor(lens)


def tiny_config(tmp_path: Path, **train_options) -> Config:
    data = DataConfig(
        generated_sizes=[300, 30, 30],
        cache_dir=str(tmp_path / "cache"),
        vocab_size=200,
        batch_tokens=400,
        batch_sents=16,
    )
    model = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=32, dropout=0.1)
    options = {
        "max_steps": 12,
        "val_every": 6,
        "log_every": 3,
        "progress": False,
        "val_sentences": 10,
        "plot_sentences": 2,
        "threads": 1,
        **train_options,
    }
    return Config(
        data=data,
        model=model,
        train=TrainConfig(**options),
        decode=DecodeConfig(beam_size=1, max_len_ratio=1.5),
    )


def spawn_ranks(function, world: int, *args) -> None:
    """Run ``function(rank, *args)`` in ``world`` processes joined in one gloo process group
    (the environment torchrun would give them), and wait for all."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_as_rank, args=(world, port, function, args), nprocs=world, join=True)


def _as_rank(rank: int, world: int, port: int, function, args) -> None:
    import os

    os.environ.update(
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    function(rank, *args)


def run_command(command: str, *args: str, cwd=None, stdin: str | None = None):
    """A console script (``train``, ``translate``, ...) as a user runs it, in a subprocess of
    this interpreter: its CompletedProcess, stdout and stderr as text."""
    import subprocess
    import sys

    code = f"import sys; from nmt.commands.cli import {command}; sys.argv[0] = 'nmt'; {command}()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        input=stdin,
        timeout=300,
    )
