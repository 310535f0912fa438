"""The recurrent encoder: Embedding -> dropout -> packed (bi)GRU/LSTM -> EncoderOutput.

Sequences are packed (``enforce_sorted=False``) so the RNN never reads padding: a sentence encodes
to the same memory and final state alone or inside a padded batch.

Shapes: B batch, S source length, E embedding, H hidden per direction, L layers,
D = H * directions (the memory size).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.config import PAD_ID, ModelConfig


class EncoderOutput(NamedTuple):
    """What the encoder hands to the decoder.

    Attributes:
        memory: (B,S,D) top-layer states, forward and backward concatenated; 0 on padding.
        mask: (B,S) bool, True on real source tokens.
        final_state: (B,L,D) last hidden state of every layer, directions concatenated
            ``[forward; backward]`` (the forward state after the last real token, the backward
            state after the first one).
        final_cell: (B,L,D) the matching LSTM cell states; None for a GRU.
    """

    memory: Tensor
    mask: Tensor
    final_state: Tensor
    final_cell: Tensor | None


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B,max_len) bool mask, True where position < length."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def layers_first_to_batch_first(state: Tensor, layers: int, directions: int) -> Tensor:
    """An RNN's (L*dirs, B, H) final state -> (B, L, dirs*H), directions concatenated per layer."""
    _, batch, hidden = state.shape
    state = state.view(layers, directions, batch, hidden).permute(2, 0, 1, 3)  # (B,L,dirs,H)
    return state.reshape(batch, layers, directions * hidden)


class RNNEncoder(nn.Module):
    """Embedding, dropout and a multi-layer, optionally bidirectional GRU or LSTM.

    Dropout is applied to the embeddings and between RNN layers (not to the memory: the attention
    and the bridge see the RNN's own outputs).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.layers = cfg.enc_layers
        self.directions = 2 if cfg.bidirectional else 1
        self.embed = nn.Embedding(vocab_size, cfg.emb_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(cfg.dropout)
        rnn_class = nn.LSTM if cfg.rnn == "lstm" else nn.GRU
        self.rnn = rnn_class(
            cfg.emb_dim,
            cfg.enc_hidden,
            num_layers=cfg.enc_layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.enc_layers > 1 else 0.0,
        )

    def forward(self, src: Tensor, src_lens: Tensor) -> EncoderOutput:
        """Encode src (B,S) long with lengths src_lens (B,) long (each >= 1)."""
        embedded = self.dropout(self.embed(src))  # (B,S,E)
        packed = pack_padded_sequence(
            embedded, src_lens.cpu(), batch_first=True, enforce_sorted=False
        )
        output, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(output, batch_first=True, total_length=src.size(1))
        hidden, cell = final if isinstance(final, tuple) else (final, None)
        final_state = layers_first_to_batch_first(hidden, self.layers, self.directions)
        final_cell = None
        if cell is not None:
            final_cell = layers_first_to_batch_first(cell, self.layers, self.directions)
        mask = lengths_to_mask(src_lens.to(src.device), src.size(1))
        return EncoderOutput(memory, mask, final_state, final_cell)
