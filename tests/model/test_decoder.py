"""Decoders: forward and step against the equations, padding, reorder, bridge, overfitting."""

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


# ---- an independent reference: the papers' equations, one sentence and one step at a time ----


def rnn_cell(rnn, layer: int, x, h, c):
    """One step of layer ``layer`` of nn.GRU / nn.LSTM from its weights (PyTorch's gate order)."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
    b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
    if c is None:  # GRU: r, z, n
        x_r, x_z, x_n = (w_ih @ x + b_ih).chunk(3)
        h_r, h_z, h_n = (w_hh @ h + b_hh).chunk(3)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h, None
    i, f, g, o = (w_ih @ x + b_ih + w_hh @ h + b_hh).chunk(4)  # LSTM: i, f, g, o
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def reference_decode(model, cfg: ModelConfig, src, tgt_in):
    """Logits (T,V), attention (T,S), context (T,D) of one unpadded sentence pair."""
    dec = model.decoder
    enc = model.encode(src[None], torch.tensor([src.size(0)]))
    memory, finals = enc.memory, enc.final_state[0]  # (1,S,D), (L_enc,D)
    cells = None if enc.final_cell is None else enc.final_cell[0]

    def bridged(final, maps):
        if cfg.bridge == "zeros":
            return [torch.zeros(cfg.dec_hidden) for _ in range(cfg.dec_layers)]
        rows = final if final.size(0) == cfg.dec_layers else final[-1:].expand(cfg.dec_layers, -1)
        return [torch.tanh(maps[layer](rows[layer])) for layer in range(cfg.dec_layers)]

    h = bridged(finals, dec.bridge.hidden_maps)
    c = None if cfg.rnn == "gru" else bridged(cells, dec.bridge.cell_maps)
    feed = torch.zeros(cfg.dec_hidden)
    keys, values = dec.attention.precompute(memory)
    mask = torch.ones(1, src.size(0), dtype=torch.bool)

    def attend(query):
        out = dec.attention(query[None], keys, values, mask)
        return out.context[0], out.attn[0]

    def stack(x):
        for layer in range(cfg.dec_layers):
            h[layer], cell = rnn_cell(dec.rnn, layer, x, h[layer], None if c is None else c[layer])
            if c is not None:
                c[layer] = cell
            x = h[layer]
        return x

    logits, attns, contexts = [], [], []
    for y in tgt_in.tolist():
        emb = dec.embed.weight[y]
        if cfg.decoder == "bahdanau":  # attend with s_{t-1}, then step; deep output
            context, attn = attend(h[-1])
            top = stack(torch.cat([emb, context]))
            pre = torch.tanh(dec.deep_output(torch.cat([top, context, emb])))
        else:  # step (with input feeding), then attend with h_t; attentional vector
            top = stack(torch.cat([emb, feed]) if cfg.input_feeding else emb)
            context, attn = attend(top)
            pre = feed = torch.tanh(dec.combine.weight @ torch.cat([context, top]))
        if dec.tie_proj is not None:
            pre = dec.tie_proj.weight @ pre
        logits.append(dec.out.weight @ pre + dec.out.bias)
        attns.append(attn)
        contexts.append(context)
    return torch.stack(logits), torch.stack(attns), torch.stack(contexts)


CASES = [
    ("bahdanau", "gru", "bahdanau", {}),
    ("bahdanau", "lstm", "general", {"dec_layers": 2}),
    ("luong", "gru", "dot", {"dec_layers": 2, "enc_layers": 2}),
    ("luong", "lstm", "bahdanau", {"enc_layers": 2}),
    ("luong", "gru", "multihead", {"input_feeding": False, "tie_embeddings": True}),
    ("bahdanau", "lstm", "concat", {"bridge": "zeros", "tie_embeddings": True, "emb_dim": 16}),
]


@pytest.mark.parametrize("decoder,rnn,attention,extra", CASES)
def test_forward_and_step_follow_the_equations(decoder, rnn, attention, extra) -> None:
    """Teacher forcing and a loop of ``step``, on a padded batch, against ``reference_decode``."""
    torch.manual_seed(0)
    cfg = tiny_config(decoder, rnn, attention, **extra)
    model = build_model(cfg, VOCAB, VOCAB).eval()
    src_lens, tgt_lens = [5, 3, 6], [4, 6, 2]
    src, lens, tgt_in, _ = random_pair(src_lens, tgt_lens)
    with torch.no_grad():
        forced = model(src, lens, tgt_in)
        stepped = step_loop(model, src, lens, tgt_in)
        assert forced.logits.shape == (3, 6, VOCAB)
        assert forced.attn.shape == (3, 6, 6) and forced.context.shape == (3, 6, 16)
        for b, (n, m) in enumerate(zip(src_lens, tgt_lens, strict=True)):
            want = reference_decode(model, cfg, src[b, :n], tgt_in[b, :m])
            for out in (forced, stepped):
                got = out.logits[b, :m], out.attn[b, :m, :n], out.context[b, :m]
                for tensor, expected in zip(got, want, strict=True):
                    torch.testing.assert_close(tensor, expected, atol=1e-5, rtol=1e-4)
                assert torch.all(out.attn[b, :m, n:] == 0)  # padding gets no weight
    if attention == "multihead":
        assert forced.head_attn.shape == (3, 6, 2, 6)
        torch.testing.assert_close(forced.head_attn.mean(2), forced.attn)
    else:
        assert forced.head_attn is None and stepped.head_attn is None


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
    moved = reorder(state, index, index)
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
