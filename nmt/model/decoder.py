"""Attentional RNN decoders: Bahdanau (attend, then step) and Luong (step, then attend).

Both expose the same three calls: ``init_state(enc)`` once per sentence, ``step`` for search, and
``forward`` for teacher forcing. ``forward`` runs the recurrence step by step but embeds all
target tokens at once and applies the readout (the big H x V projection) once over all steps, so
it equals a loop of ``step`` while doing the expensive matmul as one call.

Shapes: B batch, S source length, T target length, E embedding, H decoder hidden, L decoder
layers, D memory size, V target vocabulary, h attention heads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from nmt.config import PAD_ID, ModelConfig
from nmt.model.attention import Attention, AttentionOutput
from nmt.model.bridge import Bridge
from nmt.model.encoder import EncoderOutput
from nmt.model.output_loss import linear_cross_entropy
from nmt.model.recurrence import TeacherForcedRNN

RNNStep = Callable[[Tensor | None, Tensor, Tensor | None], tuple[Tensor, Tensor, Tensor | None]]


class DecoderState(NamedTuple):
    """Everything the decoder carries, batch first so ``reorder`` is one index_select per tensor.

    The recurrent tensors have one row per hypothesis (N), the memory one row per sentence (B):
    N = B in greedy search and teacher forcing, N = B*K in beam search, whose K rows of a
    sentence are consecutive and share its memory (``attention.py``).

    Attributes:
        hidden: (N,L,H) recurrent state of every layer.
        cell: (N,L,H) LSTM cell states; None for a GRU.
        feed: (N,H) Luong's input-feeding vector (the previous attentional vector); None otherwise.
        keys: (B,S,K) attention keys, projected once per sentence by ``attention.precompute``.
        values: (B,S,D) attention values (the memory itself unless the scorer projects it).
        mask: (B,S) bool, True on real source tokens.
    """

    hidden: Tensor
    cell: Tensor | None
    feed: Tensor | None
    keys: Tensor
    values: Tensor
    mask: Tensor

    def select(self, index: Tensor, memory: Tensor | None) -> DecoderState:
        """Rows ``index`` (N',) long of the recurrent tensors (beam back-pointers, finished
        rows) and rows ``memory`` (B',) of keys, values and mask; ``memory=None`` leaves those
        as they are (hypotheses moving among their own sentence's rows)."""
        hidden, cell, feed = (None if t is None else t.index_select(0, index) for t in self[:3])
        state = self._replace(hidden=hidden, cell=cell, feed=feed)
        if memory is None:
            return state
        keys, values, mask = (t.index_select(0, memory) for t in self[3:])
        return state._replace(keys=keys, values=values, mask=mask)


class StepOutput(NamedTuple):
    """One decoding step: logits (B,V), the new state, attn (B,S), context (B,D), head_attn."""

    logits: Tensor
    state: DecoderState
    attn: Tensor
    context: Tensor
    head_attn: Tensor | None  # (B,h,S) for multihead attention, else None


class DecoderOutput(NamedTuple):
    """Teacher-forced outputs: logits (B,T,V), attn (B,T,S), context (B,T,D), head_attn."""

    logits: Tensor
    attn: Tensor
    context: Tensor
    head_attn: Tensor | None  # (B,T,h,S) for multihead attention, else None


class DecoderLoss(NamedTuple):
    """Teacher-forced summed cross-entropy, and the attention and contexts that produced it.

    The loss is computed without ever holding all (B,T,V) logits (``output_loss.py``).
    """

    loss: Tensor  # () summed over real target tokens, label-smoothed when asked
    attn: Tensor  # (B,T,S)
    context: Tensor  # (B,T,D)
    head_attn: Tensor | None  # (B,T,h,S) for multihead attention, else None


def reorder(state: DecoderState, index: Tensor, memory: Tensor | None) -> DecoderState:
    """``state.select(index, memory)`` of any state with a ``select`` method (one model's
    ``DecoderState``, or an ensemble's states together)."""
    return state.select(index, memory)


class RNNDecoder(nn.Module):
    """What both decoder styles share: embeddings, the stacked RNN, bridge and readout.

    Subclasses define ``_advance`` (one recurrent step from an embedded token) and ``_features``
    (the non-recurrent part of the readout, applied to all steps at once in ``forward``).
    The output layer is ``logits = W_out p + b`` on the pre-output p (B,...,H). With
    ``tie_embeddings`` W_out is the target embedding matrix, which needs p of size E: when
    ``H != E`` a bias-free Linear maps p to E first.
    """

    def __init__(
        self, cfg: ModelConfig, vocab_size: int, attention: Attention, input_dim: int
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.emb_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(cfg.dropout)
        rnn_class = nn.LSTM if cfg.rnn == "lstm" else nn.GRU
        self.rnn = rnn_class(
            input_dim,
            cfg.dec_hidden,
            num_layers=cfg.dec_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.dec_layers > 1 else 0.0,
        )
        self.bridge = Bridge(cfg)
        self.attention = attention
        tie_to_emb = cfg.tie_embeddings and cfg.dec_hidden != cfg.emb_dim
        self.tie_proj = nn.Linear(cfg.dec_hidden, cfg.emb_dim, bias=False) if tie_to_emb else None
        out_dim = cfg.emb_dim if cfg.tie_embeddings else cfg.dec_hidden
        self.out = nn.Linear(out_dim, vocab_size)
        if cfg.tie_embeddings:
            self.out.weight = self.embed.weight

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        """Bridge the encoder's final states and precompute the attention keys, once per batch."""
        hidden, cell = self.bridge(enc.final_state, enc.final_cell)
        keys, values = self.attention.precompute(enc.memory)
        return DecoderState(hidden, cell, self._init_feed(hidden), keys, values, enc.mask)

    def _init_feed(self, hidden: Tensor) -> Tensor | None:
        return None

    def _advance(
        self, emb: Tensor, state: DecoderState, rnn: RNNStep | None = None
    ) -> tuple[Tensor, DecoderState, AttentionOutput]:
        """One recurrent step from emb (B,E): (features (B,F), new state, attention output).
        ``rnn``: how to step the RNN (a ``TeacherForcedRNN``); None: ``_rnn_step`` on emb."""
        raise NotImplementedError

    def _features(self, features: Tensor) -> Tensor:
        """Non-recurrent part of the readout: features (...,F) -> pre-output (...,H)."""
        raise NotImplementedError

    def _pre_output(self, features: Tensor) -> Tensor:
        """What the output layer multiplies: (...,H), or (...,E) with tied embeddings."""
        pre_output = self._features(features)
        return pre_output if self.tie_proj is None else self.tie_proj(pre_output)

    def _readout(self, features: Tensor) -> Tensor:
        return self.out(self._pre_output(features))  # (...,V)

    def _rnn_step(
        self, emb: Tensor, rest: Tensor | None, state: DecoderState, rnn: RNNStep | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run the L-layer RNN for one step on [emb; rest] (B,I): top (B,H), hidden, cell (B,L,H).
        ``rnn`` (teacher forcing) has the embedding's part of the input already."""
        if rnn is not None:
            return rnn(rest, state.hidden, state.cell)
        rnn_input = emb if rest is None else torch.cat([emb, rest], dim=-1)
        hidden = state.hidden.transpose(0, 1).contiguous()  # (L,B,H) as nn.GRU/LSTM expect
        if state.cell is None:
            output, hidden = self.rnn(rnn_input.unsqueeze(1), hidden)
            return output[:, 0], hidden.transpose(0, 1), None
        cell = state.cell.transpose(0, 1).contiguous()
        output, (hidden, cell) = self.rnn(rnn_input.unsqueeze(1), (hidden, cell))
        return output[:, 0], hidden.transpose(0, 1), cell.transpose(0, 1)

    def step(
        self, y_prev: Tensor, state: DecoderState, enc: EncoderOutput | None = None
    ) -> StepOutput:
        """Decode one token for every row: y_prev (B,) long -> StepOutput.

        ``enc`` is accepted for the ``step(y_prev, state, enc)`` contract but not read: ``state``
        already holds keys, values and mask, so ``reorder`` alone re-aligns beams.
        """
        emb = self.dropout(self.embed(y_prev))  # (B,E)
        features, state, att = self._advance(emb, state)
        return StepOutput(self._readout(features), state, att.attn, att.context, att.head_attn)

    def forward(self, tgt_in: Tensor, enc: EncoderOutput) -> DecoderOutput:
        """Teacher forcing over tgt_in (B,T) long = BOS y_1 ... y_{T-1}, padded with PAD_ID."""
        features, attn, context, head_attn = self._teacher_force(tgt_in, enc)
        return DecoderOutput(self._readout(features), attn, context, head_attn)

    def loss(
        self, tgt_in: Tensor, enc: EncoderOutput, tgt_out: Tensor, label_smoothing: float = 0.0
    ) -> DecoderLoss:
        """The summed (label-smoothed) cross-entropy of tgt_out (B,T) = y_1 ... EOS, padded."""
        features, attn, context, head_attn = self._teacher_force(tgt_in, enc)
        loss = linear_cross_entropy(
            self._pre_output(features), self.out.weight, self.out.bias, tgt_out, label_smoothing
        )
        return DecoderLoss(loss, attn, context, head_attn)

    def _teacher_force(
        self, tgt_in: Tensor, enc: EncoderOutput
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """The recurrence over tgt_in: features (B,T,F), attn, context and head_attn per step.
        With gradients, the RNN's weight gradients are taken once per batch (``recurrence.py``).
        """
        state = self.init_state(enc)
        embedded = self.dropout(self.embed(tgt_in))  # (B,T,E), all steps at once
        rnn = TeacherForcedRNN(self.rnn, embedded) if torch.is_grad_enabled() else None
        features, attns, contexts, heads = [], [], [], []
        for emb in embedded.unbind(1):  # views whose gradients are stacked once, not summed
            feature, state, att = self._advance(emb, state, rnn)
            features.append(feature)
            attns.append(att.attn)
            contexts.append(att.context)
            heads.append(att.head_attn)
        head_attn = None if heads[0] is None else torch.stack(heads, dim=1)
        # stacked, the readout is one (B*T,F)x(F,V) matmul
        stacked = torch.stack(features, dim=1)
        return stacked, torch.stack(attns, 1), torch.stack(contexts, 1), head_attn


class BahdanauDecoder(RNNDecoder):
    """Bahdanau et al. (2015): attend with the previous state, then step the RNN.

    ``c_t = attention(s_{t-1}, h)``; ``s_t = RNN([y_{t-1}; c_t], s_{t-1})``;
    deep output ``p_t = tanh(W_o [s_t; c_t; y_{t-1}] + b_o)`` (dropout), ``logits = W_out p_t``.
    The query is the top layer's state; the deep output is computed for all steps at once.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, attention: Attention) -> None:
        memory_dim = cfg.enc_hidden * (2 if cfg.bidirectional else 1)
        super().__init__(cfg, vocab_size, attention, cfg.emb_dim + memory_dim)
        self.deep_output = nn.Linear(cfg.dec_hidden + memory_dim + cfg.emb_dim, cfg.dec_hidden)

    def _advance(
        self, emb: Tensor, state: DecoderState, rnn: RNNStep | None = None
    ) -> tuple[Tensor, DecoderState, AttentionOutput]:
        att = self.attention(state.hidden[:, -1], state.keys, state.values, state.mask)
        top, hidden, cell = self._rnn_step(emb, att.context, state, rnn)
        features = torch.cat([top, att.context, emb], dim=-1)  # (B,H+D+E)
        return features, state._replace(hidden=hidden, cell=cell), att

    def _features(self, features: Tensor) -> Tensor:
        return self.dropout(torch.tanh(self.deep_output(features)))


class LuongDecoder(RNNDecoder):
    """Luong et al. (2015): step the RNN, then attend with the new state.

    ``h_t = RNN([y_{t-1}; h~_{t-1}], h_{t-1})`` (input feeding; just ``y_{t-1}`` without it);
    ``c_t = attention(h_t, h)``; attentional vector ``h~_t = tanh(W_c [c_t; h_t])`` (dropout);
    ``logits = W_s h~_t``. The dropped-out ``h~_t`` is what is fed back, as in OpenNMT.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, attention: Attention) -> None:
        memory_dim = cfg.enc_hidden * (2 if cfg.bidirectional else 1)
        self.input_feeding = cfg.input_feeding
        input_dim = cfg.emb_dim + (cfg.dec_hidden if cfg.input_feeding else 0)
        super().__init__(cfg, vocab_size, attention, input_dim)
        self.combine = nn.Linear(memory_dim + cfg.dec_hidden, cfg.dec_hidden, bias=False)

    def _init_feed(self, hidden: Tensor) -> Tensor | None:
        return hidden.new_zeros(hidden.size(0), hidden.size(2)) if self.input_feeding else None

    def _advance(
        self, emb: Tensor, state: DecoderState, rnn: RNNStep | None = None
    ) -> tuple[Tensor, DecoderState, AttentionOutput]:
        top, hidden, cell = self._rnn_step(emb, state.feed, state, rnn)
        att = self.attention(top, state.keys, state.values, state.mask)
        attentional = self.dropout(torch.tanh(self.combine(torch.cat([att.context, top], -1))))
        feed = attentional if self.input_feeding else None
        return attentional, state._replace(hidden=hidden, cell=cell, feed=feed), att

    def _features(self, features: Tensor) -> Tensor:
        return features
