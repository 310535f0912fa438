"""The inference layer: loading a translator, and forced decoding (teacher-forced attention)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nmt.data.batching import EncodedSplit, collate
from nmt.data.corpus import load_split
from nmt.inference.decoding import force_decode, load_translator


@pytest.fixture(scope="module")
def translator(trained_run):
    return load_translator(str(trained_run))


@pytest.fixture(scope="module")
def encoded(translator):
    split = load_split(translator.data, "test")
    vocabs = translator.vocabs
    return EncodedSplit(
        "test", vocabs.src.encode_batch(split.src[:12]), vocabs.tgt.encode_batch(split.tgt[:12])
    )


def test_forced_attention_has_one_row_per_target_piece_and_sums_to_one(translator, encoded):
    forced = force_decode(translator.model, translator.vocabs, encoded, range(len(encoded)))
    assert len(forced) == len(encoded)
    for f, src, tgt in zip(forced, encoded.src, encoded.tgt):
        assert f.attn.shape == (len(tgt) + 1, len(src) + 1)  # EOS row and column
        assert f.src_labels[-1] == f.tgt_labels[-1] == "</s>"
        assert f.src_labels[:-1] == translator.vocabs.src.pieces(src)
        np.testing.assert_allclose(f.attn.sum(1), 1.0, atol=1e-5)
        assert f.context.shape[0] == len(tgt) + 1 and f.head_attn is None


def test_forced_attention_of_a_sentence_is_the_same_alone_and_in_a_batch(translator, encoded):
    """Batching pads and sorts by length; neither may change a sentence's attention."""
    order = [5, 0, 11, 3]
    together = force_decode(translator.model, translator.vocabs, encoded, order, batch_size=3)
    for index, f in zip(order, together):
        batch = collate(encoded, [index])
        with torch.no_grad():
            alone = translator.model(batch.src, batch.src_lens, batch.tgt_in).attn[0]
        np.testing.assert_allclose(f.attn, alone.numpy(), atol=1e-5)


def test_force_decode_leaves_the_model_in_the_mode_it_found(translator, encoded):
    model = translator.model
    model.train()
    try:
        first = force_decode(model, translator.vocabs, encoded, [0])[0]
        assert model.training
        model.eval()
        again = force_decode(model, translator.vocabs, encoded, [0])[0]
        np.testing.assert_array_equal(first.attn, again.attn)  # eval inside: no dropout
        assert not model.training
    finally:
        model.eval()


def test_search_settings_are_the_checkpoints_but_for_what_was_given(translator):
    from nmt.config import DecodeConfig
    from nmt.inference.decoding import search_settings

    assert translator.decode.beam_size == 3  # what trained_run validated with
    requested = DecodeConfig(beam_size=5, alpha=0.2, device="cpu")
    assert search_settings(translator, requested, None) == requested
    merged = search_settings(translator, requested, {"alpha"})
    assert (merged.beam_size, merged.alpha, merged.device) == (3, 0.2, "cpu")
    assert search_settings(translator, requested, set()).alpha == translator.decode.alpha
    with pytest.raises(ValueError, match="beams"):
        search_settings(translator, requested, {"beams"})
    with pytest.raises(ValueError, match="decode.n_best=4 exceeds decode.beam_size=3"):
        search_settings(translator, DecodeConfig(beam_size=5, n_best=4), {"n_best"})
