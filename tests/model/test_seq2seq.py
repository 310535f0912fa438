"""The assembled model: build_model for every option, parameter counts, import hygiene, and a
reversal task whose learned attention must point at the mirrored source position."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from nmt.config import ATTENTIONS, BOS_ID, EOS_ID, PAD_ID, UNK_ID, ModelConfig
from nmt.model import Seq2Seq, build_model, count_parameters
from nmt.model.seq2seq import drop_words

VOCAB = 12  # 4 special ids + 8 symbols


def reversal_batch(size: int, gen: torch.Generator):
    """Source w_1..w_n EOS, target w_n..w_1 EOS (n in 4..8); returns n as well."""
    lens = torch.randint(4, 9, (size,), generator=gen)
    width = int(lens.max()) + 1
    src, tgt_in, tgt_out = (torch.full((size, width), PAD_ID) for _ in range(3))
    for b, n in enumerate(lens.tolist()):
        words = torch.randint(4, VOCAB, (n,), generator=gen)
        src[b, : n + 1] = torch.cat([words, torch.tensor([EOS_ID])])
        tgt_in[b, : n + 1] = torch.cat([torch.tensor([BOS_ID]), words.flip(0)])
        tgt_out[b, : n + 1] = torch.cat([words.flip(0), torch.tensor([EOS_ID])])
    return src, lens + 1, tgt_in, tgt_out, lens


def test_attention_learns_the_reversal_alignment() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    cfg = ModelConfig(
        decoder="luong", attention="dot", emb_dim=16, enc_hidden=16, dec_hidden=32, dropout=0.0
    )
    model = build_model(cfg, VOCAB, VOCAB)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        src, src_lens, tgt_in, tgt_out, _ = reversal_batch(64, gen)
        logits = model(src, src_lens, tgt_in).logits
        loss = F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=PAD_ID)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src, src_lens, tgt_in, _, lens = reversal_batch(200, torch.Generator().manual_seed(9))
    with torch.no_grad():
        attn = model(src, src_lens, tgt_in).attn  # (B,T,S)
    hits = total = 0
    for b, n in enumerate(lens.tolist()):
        for t in range(n):  # target word t is source word n-1-t
            hits += int(attn[b, t].argmax()) == n - 1 - t
            total += 1
    assert hits / total > 0.9


PEER = dict(emb_dim=256, enc_hidden=256, dec_hidden=512, bidirectional=True, decoder="luong")


def test_peer_shape_parameter_count() -> None:
    cfg = ModelConfig(attention="bahdanau", input_feeding=True, bridge="learned", **PEER)
    assert count_parameters(build_model(cfg, 8000, 8000)) == 12_270_912


def test_tied_embeddings_share_one_matrix() -> None:
    untied = build_model(ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=8), 30, 40)
    tied = build_model(
        ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=8, tie_embeddings=True), 30, 40
    )
    assert tied.decoder.out.weight is tied.decoder.embed.weight
    assert count_parameters(untied) - count_parameters(tied) == 40 * 8
    assert torch.all(tied.decoder.embed.weight[PAD_ID] == 0)


@pytest.mark.parametrize("normalizer", ["softmax", "sparsemax", "hard"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_attention_and_normalizer_builds_and_runs(attention: str, normalizer: str) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(
        attention=attention, normalizer=normalizer, emb_dim=8, enc_hidden=4, dec_hidden=8, heads=2
    )
    model = build_model(cfg, 15, 17)
    assert isinstance(model, Seq2Seq)
    src = torch.tensor([[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]])
    tgt_in = torch.tensor([[BOS_ID, 9, 10], [BOS_ID, 11, PAD_ID]])
    out = model(src, torch.tensor([4, 2]), tgt_in)
    assert out.logits.shape == (2, 3, 17) and out.attn.shape == (2, 3, 4)
    assert torch.all(out.attn[1, :, 2:] == 0)
    out.logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_model_imports_no_hydra_matplotlib_or_tensorboard() -> None:
    code = (
        "import sys, nmt.model; "
        "bad = [m for m in ('hydra', 'matplotlib', 'tensorboard') if m in sys.modules]; "
        "assert not bad, bad; "
        "ours = [m for m in sys.modules if m.split('.')[0] == 'nmt']; "
        "assert set(ours) <= {'nmt', 'nmt.config'} | {m for m in ours if m.startswith('nmt.model')}"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_word_dropout_replaces_only_real_tokens_at_the_asked_rate() -> None:
    torch.manual_seed(0)
    specials = torch.tensor([PAD_ID, BOS_ID, EOS_ID, UNK_ID]).repeat(5000)
    words = torch.randint(4, 100, (100_000,))
    assert torch.equal(drop_words(specials, 0.5), specials)
    dropped = drop_words(words, 0.3)
    changed = dropped != words
    assert torch.all(dropped[changed] == UNK_ID)
    assert abs(changed.float().mean().item() - 0.3) < 0.01


def test_word_dropout_trains_on_the_dropped_tokens_and_is_off_in_eval() -> None:
    gen = torch.Generator().manual_seed(0)
    src, src_lens, tgt_in, tgt_out, _ = reversal_batch(8, gen)
    cfg = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=32, dropout=0.0, word_dropout=0.4)
    model = build_model(cfg, VOCAB, VOCAB)
    torch.manual_seed(3)
    trained = model.loss(src, src_lens, tgt_in, tgt_out).loss
    torch.manual_seed(3)  # the same draws, made by hand, into a model without word dropout
    dropped_src, dropped_tgt = drop_words(src, 0.4), drop_words(tgt_in, 0.4)
    model.word_dropout = 0.0
    by_hand = model.loss(dropped_src, src_lens, dropped_tgt, tgt_out).loss
    clean = model.loss(src, src_lens, tgt_in, tgt_out).loss
    assert torch.allclose(trained, by_hand) and not torch.allclose(trained, clean)
    model.word_dropout = 0.4
    model.eval()
    assert torch.allclose(model.loss(src, src_lens, tgt_in, tgt_out).loss, clean)
