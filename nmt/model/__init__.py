"""The model: encoder, attention, decoders, and ``build_model``, the one place they are assembled.

Imports only torch and ``nmt.config``.
"""

from __future__ import annotations

from nmt.config import ModelConfig
from nmt.model.attention import Attention, AttentionOutput, build_attention
from nmt.model.decoder import (
    BahdanauDecoder,
    DecoderLoss,
    DecoderOutput,
    DecoderState,
    LuongDecoder,
    RNNDecoder,
    StepOutput,
    reorder,
)
from nmt.model.encoder import EncoderOutput, RNNEncoder
from nmt.model.seq2seq import Seq2Seq, Seq2SeqLoss, count_parameters, init_parameters

__all__ = [
    "Attention",
    "AttentionOutput",
    "BahdanauDecoder",
    "DecoderLoss",
    "DecoderOutput",
    "DecoderState",
    "EncoderOutput",
    "LuongDecoder",
    "RNNDecoder",
    "RNNEncoder",
    "Seq2Seq",
    "Seq2SeqLoss",
    "StepOutput",
    "build_attention",
    "build_model",
    "count_parameters",
    "init_parameters",
    "reorder",
]


def build_model(cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    """Assemble and initialize the ``Seq2Seq`` model that ``cfg`` describes."""
    encoder = RNNEncoder(cfg, src_vocab)
    decoder_class = BahdanauDecoder if cfg.decoder == "bahdanau" else LuongDecoder
    decoder = decoder_class(cfg, tgt_vocab, build_attention(cfg))
    model = Seq2Seq(encoder, decoder, cfg.word_dropout)
    init_parameters(model)
    return model
