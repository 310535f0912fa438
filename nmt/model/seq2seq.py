"""The encoder-decoder pair, one result per method: ``forward -> DecoderOutput`` (logits and
attention), ``loss -> DecoderLoss`` (training's objective through the fused output layer).

The model takes explicit tensors and returns typed outputs; batching and logging live in training
code, so search can reuse ``encode`` and ``decoder.step`` without carrying targets.
Shapes: B batch, S source length, T target length.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import EOS_ID, UNK_ID
from nmt.model.decoder import DecoderLoss, DecoderOutput, RNNDecoder
from nmt.model.encoder import EncoderOutput, RNNEncoder


class Seq2Seq(nn.Module):
    """An ``RNNEncoder`` followed by an attentional ``RNNDecoder``.

    ``word_dropout`` (training only): each source and target-input token is read as <unk> with
    this chance, so the model cannot lean on any single word (Bowman et al., 2016; Sennrich et
    al., 2016 drop whole words the same way).
    """

    def __init__(self, encoder: RNNEncoder, decoder: RNNDecoder, word_dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.word_dropout = word_dropout

    def encode(self, src: Tensor, src_lens: Tensor) -> EncoderOutput:
        """src (B,S) long padded with PAD_ID, src_lens (B,) long -> EncoderOutput."""
        return self.encoder(src, src_lens)

    def forward(self, src: Tensor, src_lens: Tensor, tgt_in: Tensor) -> DecoderOutput:
        """Teacher-forced logits (B,T,V), attn (B,T,S), context (B,T,D) for tgt_in (B,T)."""
        return self.decoder(tgt_in, self.encode(src, src_lens))

    def loss(
        self,
        src: Tensor,
        src_lens: Tensor,
        tgt_in: Tensor,
        tgt_out: Tensor,
        label_smoothing: float = 0.0,
    ) -> DecoderLoss:
        """Training's objective: the summed cross-entropy of tgt_out (B,T), through the fused
        output layer (no (B,T,V) logits held), with the attention that produced it."""
        if self.training and self.word_dropout:
            src, tgt_in = drop_words(src, self.word_dropout), drop_words(tgt_in, self.word_dropout)
        return self.decoder.loss(tgt_in, self.encode(src, src_lens), tgt_out, label_smoothing)


def drop_words(tokens: Tensor, chance: float) -> Tensor:
    """``tokens`` with each real token (not PAD, BOS or EOS) replaced by UNK_ID with ``chance``."""
    dropped = torch.rand(tokens.shape, device=tokens.device) < chance
    return tokens.masked_fill(dropped & (tokens > EOS_ID), UNK_ID)


class Seq2SeqLoss(nn.Module):
    """``Seq2Seq.loss`` as a module's ``forward``: training wraps this in DDP, which syncs
    gradients through ``forward`` only."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor | float) -> DecoderLoss:
        """``model.loss(src, src_lens, tgt_in, tgt_out, label_smoothing)``."""
        return self.model.loss(*inputs)


def init_parameters(model: nn.Module) -> None:
    """Xavier-uniform weight matrices, zero biases, embeddings N(0, E^-1/2) with a zero pad row.

    Embeddings go last so a tied output projection keeps the embedding's initialization. Scalar
    parameters (the cosine scorer's scale) keep their own initial values.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.RNNBase)):
            for name, param in module.named_parameters(recurse=False):
                if name.startswith("weight"):
                    nn.init.xavier_uniform_(param)
                elif name.startswith("bias"):
                    nn.init.zeros_(param)
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=module.embedding_dim**-0.5)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, each shared tensor (tied embeddings) counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
