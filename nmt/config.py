"""Typed configuration schemas, one dataclass per Hydra group.

Hydra validates every override against these at start-up (a misspelled key or a wrong type fails
before any work starts); closed choices are checked in ``__post_init__``, which runs when
``cli.py`` converts the composed config with ``OmegaConf.to_object``. Nothing below ``cli.py``
sees a DictConfig: functions take the sub-config they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a ValueError naming the option when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{option}={value!r} is not one of: {', '.join(choices)}")


def check_positive(option: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{option}={value!r} must be > 0")


@dataclass
class DataConfig:
    """Where the parallel corpus comes from, how it is cleaned, tokenized and batched."""

    source: str = "generated"  # generated | multi30k | files | hf
    src: str = "en"
    tgt: str = "de"
    root: str | None = None  # local directory (files, multi30k local copy)
    name: str | None = None  # hub id or local path of a Hugging Face dataset (hf, multi30k)
    subset: str | None = None  # the dataset's configuration name, e.g. "de-en" for wmt14
    test_sets: list[str] = field(default_factory=lambda: ["test"])
    # cleaning
    min_len: int = 1  # in whitespace words, both sides
    max_len: int = 100
    max_len_ratio: float = 3.0  # max(words_src, words_tgt) / min(...)
    # generated corpus
    generated_sizes: list[int] = field(
        default_factory=lambda: [20000, 500, 500]
    )  # train, valid, test
    generated_seed: int = 1234
    # SentencePiece
    spm_type: str = "unigram"  # unigram | bpe
    vocab_size: int = 8000
    joint_vocab: bool = True
    character_coverage: float = 1.0
    spm_sample: int = 200_000  # training pairs the vocabulary learns from (uniform sample)
    cache_dir: str = "data/cache"
    # batching
    batch_tokens: int = 4096  # padded source+target positions per batch
    batch_sents: int = 128
    max_tokens: int = 250  # pieces per side: longer training pairs are left out (others kept)

    def __post_init__(self) -> None:
        check_choice("data.source", self.source, ("generated", "multi30k", "files", "hf"))
        check_choice("data.spm_type", self.spm_type, ("unigram", "bpe"))
        for option in (
            "vocab_size",
            "batch_tokens",
            "batch_sents",
            "max_len",
            "max_tokens",
            "spm_sample",
        ):
            check_positive(f"data.{option}", getattr(self, option))
        if self.source == "files" and self.root is None:
            raise ValueError("data=files needs data.root=<directory with {split}.{lang} files>")
        if self.source == "hf" and self.name is None:
            raise ValueError("data=hf needs data.name=<hub id or local dataset path>")
        if self.src == self.tgt:
            raise ValueError(f"data.src and data.tgt are both {self.src!r}")
        if len(self.generated_sizes) != 3:
            raise ValueError("data.generated_sizes must list three sizes: train, valid, test")


@dataclass
class ModelConfig:
    """Encoder, attention and decoder shape; read only by ``nmt.model.build_model``."""

    rnn: str = "gru"  # gru | lstm
    emb_dim: int = 128
    enc_hidden: int = 128  # per direction
    enc_layers: int = 1
    bidirectional: bool = True
    bridge: str = "learned"  # learned | zeros
    decoder: str = "luong"  # bahdanau | luong
    dec_hidden: int = 256
    dec_layers: int = 1
    input_feeding: bool = True  # Luong decoder only
    attention: str = (
        "bahdanau"  # bahdanau | dot | general | concat | scaled_dot | cosine | multihead
    )
    attn_dim: int = 0  # hidden size of additive scorers; 0 = dec_hidden
    heads: int = 4  # multihead only
    normalizer: str = "softmax"  # softmax | sparsemax | hard
    temperature: float = 1.0  # softmax temperature tau
    hard_estimator: str = "straight_through"  # straight_through | sample
    dropout: float = 0.2
    word_dropout: float = 0.0  # training: chance that an input token is read as <unk>
    tie_embeddings: bool = False  # share target embedding and output projection

    def __post_init__(self) -> None:
        check_choice("model.rnn", self.rnn, ("gru", "lstm"))
        check_choice("model.bridge", self.bridge, ("learned", "zeros"))
        check_choice("model.decoder", self.decoder, ("bahdanau", "luong"))
        check_choice("model.attention", self.attention, ATTENTIONS)
        check_choice("model.normalizer", self.normalizer, ("softmax", "sparsemax", "hard"))
        check_choice("model.hard_estimator", self.hard_estimator, ("straight_through", "sample"))
        for option in ("emb_dim", "enc_hidden", "enc_layers", "dec_hidden", "dec_layers", "heads"):
            check_positive(f"model.{option}", getattr(self, option))
        check_positive("model.temperature", self.temperature)
        for option in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, option) < 1.0:
                raise ValueError(f"model.{option}={getattr(self, option)} must be in [0, 1)")


ATTENTIONS = ("bahdanau", "dot", "general", "concat", "scaled_dot", "cosine", "multihead")


@dataclass
class TrainConfig:
    """The training loop: optimisation, validation, checkpoints, device."""

    max_steps: int = 1000
    max_epochs: int = 0  # 0 = no limit
    max_time: str | None = None  # wall-clock budget from process start: "90s", "15m", "1h"
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16 (CUDA only) | auto (bf16 where native, else fp32)
    threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    resume: str | None = None  # run directory, checkpoint file, or auto (this run's, if any)
    # optimisation
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | inverse_sqrt | linear | plateau
    warmup_steps: int = 0
    min_lr: float = 1e-5  # floor of linear decay and plateau reduction
    plateau_factor: float = 0.5
    plateau_patience: int = 2  # validations without improvement before the lr is cut
    clip_norm: float = 1.0  # 0 = no clipping
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay of the weights' moving average that validates and decodes; 0 = off
    accum_steps: int = 1  # batches per update
    sampling_prob: float = 0.0  # scheduled sampling: chance to feed the model's own prediction
    nonfinite: str = "stop"  # stop | skip: what a NaN/inf loss or gradient does
    max_skipped: int = 25  # updates skipped in a row (non-finite, fp16 overflow) before stopping
    # validation, early stopping, checkpoints, logging
    val_every: int = 250
    val_sentences: int = 0  # decode at most this many validation sentences for BLEU; 0 = all
    metric: str = "bleu"  # bleu | chrf | loss | ppl: selects `best` and drives early stopping
    patience: int = 0  # validations without improvement before stopping; 0 = never stop early
    keep_checkpoints: int = 0  # also keep the newest N step_*.pt checkpoints
    plot_sentences: int = 4  # validation sentences whose attention is drawn at every validation
    explore_sentences: int = 32  # validation sentences logged for the Attention tab (0: none)
    log_every: int = 50
    progress: bool = True

    def __post_init__(self) -> None:
        check_choice("train.device", self.device, ("auto", "cpu", "cuda"))
        check_choice("train.precision", self.precision, ("fp32", "bf16", "fp16", "auto"))
        check_choice("train.optimizer", self.optimizer, ("adam", "adamw"))
        check_choice(
            "train.schedule", self.schedule, ("constant", "inverse_sqrt", "linear", "plateau")
        )
        check_choice("train.nonfinite", self.nonfinite, ("stop", "skip"))
        check_choice("train.metric", self.metric, ("bleu", "chrf", "loss", "ppl"))
        for option in ("max_steps", "val_every", "log_every", "lr", "accum_steps", "max_skipped"):
            check_positive(f"train.{option}", getattr(self, option))
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train.label_smoothing={self.label_smoothing} must be in [0, 1)")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"train.ema={self.ema} must be in [0, 1): a decay such as 0.999, or 0")
        if not 0.0 <= self.sampling_prob <= 1.0:
            raise ValueError(f"train.sampling_prob={self.sampling_prob} must be in [0, 1]")
        if self.max_time is not None:
            parse_duration(self.max_time)
        if self.resume is not None and not self.resume.strip():
            raise ValueError(
                "train.resume is empty: give a run directory or checkpoint file, or auto "
                "(this run directory's last.pt when there is one)"
            )


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "15m", "1.5h" or "1h30m"; a ValueError names train.max_time."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    total, number = 0.0, ""
    for char in text.strip().lower():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total, number = total + float(number) * units[char], ""
        else:
            raise ValueError(f"train.max_time={text!r}: use a duration such as 90s, 15m or 1h")
    total += float(number) if number else 0.0
    if total <= 0:
        raise ValueError(f"train.max_time={text!r} must be a positive duration")
    return total


@dataclass
class DecodeConfig:
    """Search settings shared by validation, nmt-translate and nmt-evaluate."""

    beam_size: int = 5
    alpha: float = 1.0  # GNMT length penalty exponent; 0 = raw log-probability
    beta: float = 0.0  # GNMT coverage penalty weight
    max_len_ratio: float = 2.0  # max output length = ratio * source length + 10
    min_len: int = 0
    n_best: int = 1
    no_repeat_ngram: int = 0  # forbid repeating any n-gram of this size in an output; 0 = off
    precision: str = "fp32"  # fp32 | bf16 (autocast matmuls) | int8 (CPU: int8 decoder matmuls)
    batch_size: int = 64  # sentences per decoding batch
    shortlist: int = 0  # 0 = the whole output layer; k: each batch's candidates, k per source piece
    shortlist_frequent: int = 500  # ... plus this many of the most frequent target pieces
    device: str = "auto"  # auto | cpu | cuda: where nmt-translate and nmt-evaluate search
    workers: int = 1  # CPU: processes decoding batches in parallel, sharing torch's threads

    def __post_init__(self) -> None:
        for option in ("beam_size", "max_len_ratio", "n_best", "batch_size", "workers"):
            check_positive(f"decode.{option}", getattr(self, option))
        if not 0 <= self.shortlist <= 100:
            raise ValueError(f"decode.shortlist={self.shortlist} must be in [0, 100] (0 = off)")
        if not 0 <= self.shortlist_frequent <= 1000:
            raise ValueError(
                f"decode.shortlist_frequent={self.shortlist_frequent} must be in [0, 1000]"
            )
        if self.no_repeat_ngram < 0:
            raise ValueError(f"decode.no_repeat_ngram={self.no_repeat_ngram} must be >= 0")
        check_choice("decode.precision", self.precision, ("fp32", "bf16", "int8"))
        check_choice("decode.device", self.device, ("auto", "cpu", "cuda"))
        if self.n_best > self.beam_size:
            raise ValueError(
                f"decode.n_best={self.n_best} exceeds decode.beam_size={self.beam_size}"
            )


@dataclass
class Config:
    """nmt-train's root: the four groups. Checkpoints carry it, so any command can rebuild a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


# Special token ids, fixed for every vocabulary: the SentencePiece models are trained with these ids
# and the model's embeddings use PAD_ID as padding_idx.
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
