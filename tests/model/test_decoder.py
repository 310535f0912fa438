"""Decoders: forward == a loop of step, padding invariance, reorder, bridge, and overfitting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmt.config import BOS_ID, EOS_ID, PAD_ID, ModelConfig
from nmt.model import build_model, reorder
from nmt.model.bridge import Bridge
from nmt.model.decoder import DecoderOutput

VOCAB = 20


def tiny_config(
    decoder: str, rnn: str = "gru", attention: str = "bahdanau", **extra
) -> ModelConfig:
    sizes = dict(emb_dim=8, enc_hidden=8, dec_hidden=16, attn_dim=8, heads=2, dropout=0.0)
    sizes.update(extra)
    return ModelConfig(decoder=decoder, rnn=rnn, attention=attention, **sizes)


def random_pair(src_lens: list[int], tgt_lens: list[int], seed: int = 0):
    """src padded with PAD, src ends with EOS; tgt_in = BOS y..., tgt_out = y... EOS."""
    gen = torch.Generator().manual_seed(seed)
    batch = len(src_lens)
    src = torch.full((batch, max(src_lens)), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((batch, max(tgt_lens)), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((batch, max(tgt_lens)), PAD_ID, dtype=torch.long)
    for b, (n, m) in enumerate(zip(src_lens, tgt_lens, strict=True)):
        src[b, : n - 1] = torch.randint(4, VOCAB, (n - 1,), generator=gen)
        src[b, n - 1] = EOS_ID
        words = torch.randint(4, VOCAB, (m - 1,), generator=gen)
        tgt_in[b, :m] = torch.cat([torch.tensor([BOS_ID]), words])
        tgt_out[b, :m] = torch.cat([words, torch.tensor([EOS_ID])])
    return src, torch.tensor(src_lens), tgt_in, tgt_out


def step_loop(model, src, src_lens, tgt_in) -> DecoderOutput:
    enc = model.encode(src, src_lens)
    state = model.decoder.init_state(enc)
    logits, attns, contexts, heads = [], [], [], []
    for t in range(tgt_in.size(1)):
        out = model.decoder.step(tgt_in[:, t], state, enc)
        state = out.state
        logits.append(out.logits)
        attns.append(out.attn)
        contexts.append(out.context)
        heads.append(out.head_attn)
    head_attn = None if heads[0] is None else torch.stack(heads, 1)
    return DecoderOutput(
        torch.stack(logits, 1), torch.stack(attns, 1), torch.stack(contexts, 1), head_attn
    )


CASES = [
    ("bahdanau", "gru", "bahdanau", {}),
    ("bahdanau", "lstm", "general", {"dec_layers": 2}),
    ("luong", "gru", "dot", {"dec_layers": 2, "enc_layers": 2}),
    ("luong", "lstm", "bahdanau", {"enc_layers": 2}),
    ("luong", "gru", "multihead", {"input_feeding": False, "tie_embeddings": True}),
    ("bahdanau", "lstm", "concat", {"bridge": "zeros", "tie_embeddings": True, "emb_dim": 16}),
]


@pytest.mark.parametrize("decoder,rnn,attention,extra", CASES)
def test_forward_equals_loop_of_step(decoder, rnn, attention, extra) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(decoder, rnn, attention, **extra), VOCAB, VOCAB).eval()
    src, src_lens, tgt_in, _ = random_pair([5, 3, 6], [4, 6, 2])
    with torch.no_grad():
        forced = model(src, src_lens, tgt_in)
        stepped = step_loop(model, src, src_lens, tgt_in)
    assert forced.logits.shape == (3, 6, VOCAB)
    assert forced.attn.shape == (3, 6, 6) and forced.context.shape == (3, 6, 16)
    for got, want in zip(forced, stepped, strict=True):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("decoder,rnn", [("bahdanau", "lstm"), ("luong", "gru")])
def test_padding_does_not_change_a_sentence(decoder: str, rnn: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(decoder, rnn, enc_layers=2), VOCAB, VOCAB).eval()
    src_lens, tgt_lens = [3, 7, 5], [6, 2, 4]
    src, lens, tgt_in, _ = random_pair(src_lens, tgt_lens)
    with torch.no_grad():
        batch = model(src, lens, tgt_in)
        assert torch.all(batch.attn.masked_select((src == PAD_ID)[:, None]) == 0)
        for b, (n, m) in enumerate(zip(src_lens, tgt_lens, strict=True)):
            alone = model(src[b : b + 1, :n], lens[b : b + 1], tgt_in[b : b + 1, :m])
            for got, want in zip(batch[:3], alone[:3], strict=True):
                torch.testing.assert_close(got[b, :m, : want.size(-1)], want[0], atol=1e-6, rtol=0)


def test_reorder_selects_batch_rows_of_every_tensor() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config("luong", "lstm"), VOCAB, VOCAB).eval()
    src, lens, _, _ = random_pair([4, 2, 3], [2, 2, 2])
    enc = model.encode(src, lens)
    state = model.decoder.init_state(enc)
    index = torch.tensor([2, 2, 0])
    moved = reorder(state, index)
    for got, original in zip(moved, state, strict=True):
        torch.testing.assert_close(got, original.index_select(0, index))
    step = model.decoder.step(torch.full((3,), BOS_ID), moved)
    direct = model.decoder.step(torch.full((3,), BOS_ID), state)
    torch.testing.assert_close(step.logits, direct.logits[index])


def test_bridge_zeros_and_top_layer_mapping() -> None:
    final = torch.randn(2, 3, 8)  # (B, L_enc=3, D)
    zeros, cell = Bridge(tiny_config("luong", "lstm", bridge="zeros", dec_layers=2))(final, final)
    assert torch.all(zeros == 0) and torch.all(cell == 0) and zeros.shape == (2, 2, 16)
    bridge = Bridge(tiny_config("luong", "gru", enc_hidden=4, dec_layers=2))
    hidden, cell = bridge(final, None)
    assert cell is None and hidden.shape == (2, 2, 16)
    expected = torch.tanh(bridge.hidden_maps[1](final[:, -1]))  # top encoder layer
    torch.testing.assert_close(hidden[:, 1], expected)


@pytest.mark.parametrize("decoder,attention", [("bahdanau", "bahdanau"), ("luong", "general")])
def test_each_decoder_style_overfits_a_tiny_batch(decoder: str, attention: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(decoder, attention=attention, dec_hidden=32), VOCAB, VOCAB)
    src, lens, tgt_in, tgt_out = random_pair([6, 4, 7, 5], [5, 7, 4, 6], seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        logits = model(src, lens, tgt_in).logits
        loss = F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=PAD_ID)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.05
