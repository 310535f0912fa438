"""Vocabulary shortlists: the table against a hand count, a whole-vocabulary list decoding exactly
as the full output layer, and a trained model translating the same with its shortlist."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import random_src, tiny_model

from nmt.checkpoint import average_checkpoints
from nmt.config import DecodeConfig
from nmt.data.batching import EncodedSplit
from nmt.data.corpus import load_split
from nmt.data.shortlist import Shortlist, build_shortlist, cached_shortlist
from nmt.inference.beam import beam_search
from nmt.inference.decoding import load_translator, search_split, translate_lines
from nmt.inference.search import greedy
from nmt.inference.shortlist import shortlisted


def test_the_table_ranks_targets_by_how_much_they_come_with_each_source():
    rng = np.random.default_rng(0)
    src = [rng.integers(4, 30, rng.integers(1, 9)).tolist() for _ in range(300)]
    tgt = [rng.integers(4, 40, rng.integers(1, 9)).tolist() for _ in range(300)]
    shortlist = build_shortlist(src, tgt, 30, 40)
    together, target_counts = Counter(), Counter(t for sentence in tgt for t in sentence)
    for source_ids, target_ids in zip(src, tgt):
        for s in source_ids:
            for t in target_ids:
                together[s, t] += 1
    for s in range(4, 30):
        scores = {t: c * c / target_counts[t] for (s2, t), c in together.items() if s2 == s}
        expected = sorted(scores, key=lambda t: (-scores[t], t))
        row = [t for t in shortlist.table[s].tolist() if t >= 0]
        assert row == expected[: len(row)] and len(row) == min(len(expected), 100)
    top = sorted(target_counts.values(), reverse=True)[:5]
    assert [target_counts[t] for t in shortlist.frequent[:5].tolist()] == top


def test_candidates_are_the_rows_of_the_batch_plus_frequent_and_special_pieces():
    table = np.full((10, 100), -1, dtype=np.int32)
    table[5, :3], table[6, :2] = [20, 21, 22], [22, 30]
    shortlist = Shortlist(table, np.array([40, 41, 42], dtype=np.int32))
    found = shortlist.candidates(np.array([[5, 6, 3, 0]]), per_source=2, frequent=2)
    assert found.tolist() == [0, 1, 2, 3, 20, 21, 22, 30, 40, 41]


def test_a_shortlist_of_the_whole_vocabulary_decodes_as_the_full_output_layer():
    model = tiny_model(eos_bias=1.0)
    src, lens = random_src([7, 3, 5, 9, 4])
    everything = torch.arange(model.decoder.out.out_features)
    cfg = DecodeConfig(beam_size=3, n_best=2)
    with torch.no_grad():
        full_greedy, full_beam = greedy(model, src, lens, 2.0), beam_search(model, src, lens, cfg)
        with shortlisted(model, everything):
            short_greedy = greedy(model, src, lens, 2.0, vocabulary=everything)
            short_beam = beam_search(model, src, lens, cfg, vocabulary=everything)
    assert model.decoder.out.__class__ is torch.nn.Linear  # put back
    for full, short in zip(full_greedy, short_greedy):
        assert full.tokens == short.tokens and full.score == short.score
    for full, short in zip(full_beam, short_beam):
        assert [h.tokens for h in full] == [h.tokens for h in short]
        assert [h.score for h in full] == pytest.approx([h.score for h in short], abs=1e-6)


def test_a_shortlist_only_emits_its_candidates():
    model = tiny_model()
    src, lens = random_src([7, 3, 5])
    candidates = torch.tensor([0, 1, 2, 3, 7, 11])
    with torch.no_grad(), shortlisted(model, candidates):
        found = greedy(model, src, lens, 2.0, vocabulary=candidates)
        beams = beam_search(model, src, lens, DecodeConfig(beam_size=3), vocabulary=candidates)
    for hypotheses in ([h] for h in found), beams:
        emitted = {t for nbest in hypotheses for h in nbest for t in h.tokens}
        assert emitted <= set(candidates.tolist()) and emitted & {7, 11}


def test_a_trained_model_translates_the_same_with_its_shortlist(trained_run, tmp_path):
    translator = load_translator(str(trained_run))
    assert translator.shortlist is not None  # checkpoints carry the training split's
    lines = load_split(translator.data, "test").src[:60]
    split = EncodedSplit("s", translator.vocabs.src.encode_batch(lines), [[]] * 60)
    batch = np.array([ids for ids in split.src[:16] for ids in ids])
    assert len(translator.shortlist.candidates(batch, 20, 100)) < len(translator.vocabs.tgt) / 2
    for beam in (1, 3):
        decode = replace(translator.decode, beam_size=beam, n_best=1)
        full = translate_lines(translator, lines, decode, 250)
        short = translate_lines(translator, lines, replace(decode, shortlist=20), 250)
        same = sum(f[0].tokens == s[0].tokens for f, s in zip(full, short))
        assert same >= 0.95 * len(lines), (beam, same)
    with pytest.raises(ValueError, match="decode.shortlist=0"):
        search_split(translator.model, split, replace(decode, shortlist=20), torch.device("cpu"))
    best = trained_run / "checkpoints" / "best.pt"
    averaged = average_checkpoints([best, best])  # nmt-average keeps the table
    assert np.array_equal(Shortlist.of(averaged["shortlist"]).table, translator.shortlist.table)


def test_the_shortlist_is_cached_beside_the_split(tmp_path, monkeypatch):
    import nmt.data.shortlist as module

    src, tgt = [[4, 5], [6]], [[7], [8, 9]]
    first = cached_shortlist(tmp_path, src, tgt, 10, 12)
    monkeypatch.setattr(module, "build_shortlist", lambda *args: pytest.fail("rebuilt"))
    again = cached_shortlist(tmp_path, src, tgt, 10, 12)
    assert np.array_equal(first.table, again.table) and (tmp_path / "shortlist.npz").is_file()
    assert [name.name for name in tmp_path.iterdir()] == ["shortlist.npz"]  # no temporaries
