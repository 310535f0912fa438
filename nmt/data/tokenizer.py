"""SentencePiece vocabularies: trained on the training split only, cached by content hash.

Every model is trained with the fixed ids of ``nmt.config`` (PAD UNK BOS EOS = 0 1 2 3), so the
embedding's padding row and the search's BOS/EOS agree with the tokenizer by construction. The
serialized model travels inside checkpoints: a trained model never depends on this cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import sentencepiece as spm

from nmt.config import BOS_ID, EOS_ID, PAD_ID, UNK_ID, DataConfig
from nmt.data.corpus import ParallelSplit
from nmt.files import write_bytes, write_text

SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)


class Tokenizer:
    """One SentencePiece model: text <-> ids, with pieces for plot labels."""

    def __init__(self, model_proto: bytes) -> None:
        self.model_proto = model_proto
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)
        if (
            self.processor.pad_id(),
            self.processor.unk_id(),
            self.processor.bos_id(),
            self.processor.eos_id(),
        ) != SPECIAL_IDS:
            raise ValueError(
                "SentencePiece model does not use the special ids PAD UNK BOS EOS = "
                f"{SPECIAL_IDS}; it was not trained by nmt"
            )

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Text to piece ids, without BOS/EOS (batching adds them)."""
        return self.processor.encode(text)

    def encode_batch(self, texts: Sequence[str], threads: int | None = None) -> list[list[int]]:
        """Many texts at once, on ``threads`` threads (default: every core)."""
        return self.processor.encode(list(texts), num_threads=threads or os.cpu_count() or 1)

    def decode(self, ids: Iterable[int]) -> str:
        """Piece ids to detokenized text; special ids are dropped."""
        return self.processor.decode([i for i in ids if i not in SPECIAL_IDS])

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.processor.id_to_piece(int(i)) for i in ids]


@dataclass
class Vocabularies:
    """Source and target tokenizers (the same object when the vocabulary is joint)."""

    src: Tokenizer
    tgt: Tokenizer

    @property
    def joint(self) -> bool:
        return self.src is self.tgt


def train_sentencepiece(lines: Iterable[str], cfg: DataConfig) -> bytes:
    """Train a SentencePiece model on ``lines`` and return it serialized.

    ``hard_vocab_limit=False`` lets a small corpus yield fewer pieces than ``vocab_size``
    instead of failing; identity normalization keeps ``decode(encode(x))`` equal to ``x``
    up to whitespace, which is what evaluation against untouched references needs.
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type=cfg.spm_type,
        vocab_size=cfg.vocab_size,
        character_coverage=cfg.character_coverage,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        hard_vocab_limit=False,
        normalization_rule_name="identity",
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )
    return model.getvalue()


def cache_key(train: ParallelSplit, cfg: DataConfig) -> str:
    """Hash of the training text and every setting that changes the trained models."""
    settings = {
        "type": cfg.spm_type,
        "size": cfg.vocab_size,
        "joint": cfg.joint_vocab,
        "coverage": cfg.character_coverage,
        "src": cfg.src,
        "tgt": cfg.tgt,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for line in train.src + train.tgt:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def _cached_model(path: Path, lines: Iterable[str], cfg: DataConfig) -> tuple[bytes, bool]:
    if path.is_file() and path.stat().st_size:  # an empty file: a crash before the data was
        return path.read_bytes(), True  # on disk (models are fsynced now): trained again
    proto = train_sentencepiece(lines, cfg)
    write_bytes(path, proto)
    return proto, False


def build_vocabularies(
    train: ParallelSplit, cfg: DataConfig, key: str | None = None
) -> tuple[Vocabularies, Path, bool]:
    """Load the vocabularies for this training split from the cache, training them if missing.

    ``key`` names the cache entry (default: ``cache_key`` of ``train``); a streamed corpus
    passes the hash of its source and gives a sample of it as ``train``.

    Returns the vocabularies, their cache directory, and whether every model came from the cache.
    """
    directory = Path(cfg.cache_dir) / "spm" / (key or cache_key(train, cfg))
    if cfg.joint_vocab:
        proto, cached = _cached_model(directory / "joint.model", train.src + train.tgt, cfg)
        joint = Tokenizer(proto)
        vocabularies = Vocabularies(joint, joint)
    else:
        src_proto, src_cached = _cached_model(directory / f"{cfg.src}.model", train.src, cfg)
        tgt_proto, tgt_cached = _cached_model(directory / f"{cfg.tgt}.model", train.tgt, cfg)
        vocabularies = Vocabularies(Tokenizer(src_proto), Tokenizer(tgt_proto))
        cached = src_cached and tgt_cached
    write_text(directory / "settings.json", json.dumps(asdict(cfg), indent=1, default=str))
    return vocabularies, directory, cached


def cached_vocabularies(cfg: DataConfig, key: str) -> tuple[Vocabularies, Path] | None:
    """The vocabularies cached under ``key``, if every model is there (nothing is trained)."""
    directory = Path(cfg.cache_dir) / "spm" / key
    names = ["joint.model"] if cfg.joint_vocab else [f"{cfg.src}.model", f"{cfg.tgt}.model"]
    paths = [directory / name for name in names]
    if not all(path.is_file() and path.stat().st_size for path in paths):
        return None
    tokenizers = [Tokenizer(path.read_bytes()) for path in paths]
    return Vocabularies(tokenizers[0], tokenizers[-1]), directory
