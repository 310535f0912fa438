"""The encoder: packing is invisible, padding never changes a sentence's encoding."""

from __future__ import annotations

import pytest
import torch

from nmt.config import PAD_ID, ModelConfig
from nmt.model.encoder import RNNEncoder, lengths_to_mask

VOCAB = 13
VARIANTS = [(rnn, bi) for rnn in ("gru", "lstm") for bi in (True, False)]


def make_encoder(rnn: str, bidirectional: bool, layers: int = 2) -> RNNEncoder:
    torch.manual_seed(0)
    cfg = ModelConfig(
        rnn=rnn, emb_dim=8, enc_hidden=12, enc_layers=layers, bidirectional=bidirectional
    )
    return RNNEncoder(cfg, VOCAB).eval()


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD_ID, dtype=torch.long)
    for b, n in enumerate(lengths):
        src[b, :n] = torch.randint(4, VOCAB, (n,), generator=gen)
    return src, torch.tensor(lengths)


@pytest.mark.parametrize("rnn,bidirectional", VARIANTS)
def test_packed_equals_plain_rnn_on_equal_lengths(rnn: str, bidirectional: bool) -> None:
    encoder = make_encoder(rnn, bidirectional)
    src, lens = padded_batch([6, 6, 6])
    out = encoder(src, lens)
    with torch.no_grad():
        memory, final = encoder.rnn(encoder.embed(src))
    hidden = final[0] if rnn == "lstm" else final
    directions = 2 if bidirectional else 1
    torch.testing.assert_close(out.memory, memory)
    # (L*dirs,B,H) -> (B,L,dirs*H): layer 2's [forward; backward] final states
    top = torch.cat(list(hidden[directions:]), dim=-1)
    torch.testing.assert_close(out.final_state[:, -1], top)
    assert out.final_state.shape == (3, 2, 12 * directions)
    assert (out.final_cell is None) == (rnn == "gru")


@pytest.mark.parametrize("rnn,bidirectional", VARIANTS)
def test_padding_does_not_change_any_sentence(rnn: str, bidirectional: bool) -> None:
    encoder = make_encoder(rnn, bidirectional)
    lengths = [3, 7, 1, 5]
    src, lens = padded_batch(lengths)
    batch = encoder(src, lens)
    assert torch.equal(batch.mask, src != PAD_ID)
    assert torch.all(batch.memory[~batch.mask] == 0)
    for b, n in enumerate(lengths):
        alone = encoder(src[b : b + 1, :n], lens[b : b + 1])
        torch.testing.assert_close(batch.memory[b, :n], alone.memory[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(batch.final_state[b], alone.final_state[0], atol=1e-6, rtol=0)
        if rnn == "lstm":
            torch.testing.assert_close(batch.final_cell[b], alone.final_cell[0], atol=1e-6, rtol=0)


def test_backward_final_state_reads_the_first_token() -> None:
    """The backward direction's final state is its state after reading position 0."""
    encoder = make_encoder("gru", True, layers=1)
    src, lens = padded_batch([4, 2])
    out = encoder(src, lens)
    hidden = 12
    torch.testing.assert_close(out.final_state[:, 0, hidden:], out.memory[:, 0, hidden:])
    torch.testing.assert_close(out.final_state[1, 0, :hidden], out.memory[1, 1, :hidden])


def test_lengths_to_mask() -> None:
    mask = lengths_to_mask(torch.tensor([2, 0, 3]), 3)
    assert mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
