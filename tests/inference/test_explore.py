"""The explorer's inference: beam trees, forced prefixes, top-k alternatives, explorer records."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SRC_LENS, random_src, tiny_model

from nmt.config import EOS_ID, DecodeConfig
from nmt.data.batching import EncodedSplit
from nmt.inference.align import word_alignment
from nmt.inference.beam import beam_search
from nmt.inference.beam_tree import beam_search_trees
from nmt.inference.decoding import force_decode
from nmt.inference.search import greedy
from nmt.metrics import alignment_error_rate

CFG = DecodeConfig(beam_size=3, n_best=3, alpha=0.6, max_len_ratio=1.5)


class Pieces:
    """A stand-in tokenizer: id i is the piece "▁w{i}", so every piece is a word."""

    def pieces(self, ids):
        return [f"\u2581w{int(i)}" for i in ids]

    def decode(self, ids):
        return " ".join(f"w{int(i)}" for i in ids if i > 3)

    def encode_batch(self, texts):
        return [[int(word[1:]) for word in text.split()] for text in texts]


class FakeVocabs:
    src = tgt = Pieces()


def test_trees_leave_the_search_unchanged_and_hold_its_outputs():
    model = tiny_model(eos_bias=1.0)
    src, src_lens = random_src(SRC_LENS)
    plain = beam_search(model, src, src_lens, CFG)
    found, trees = beam_search_trees(model, src, src_lens, CFG)
    for hyps, same, tree in zip(plain, found, trees, strict=True):
        assert [h.tokens for h in hyps] == [h.tokens for h in same]
        assert [h.score for h in hyps] == [h.score for h in same]
        finals = sorted(tree.finals, key=tree.finals.get)
        assert len(finals) >= len(hyps)
        for rank, hyp in enumerate(hyps):  # the n-best are the top-ranked finished nodes
            path = tree.path(finals[rank])
            tokens = [tree.tokens[node] for node in path[1:]]
            ended = hyp.attn.size(0) == len(hyp.tokens) + 1
            assert tokens == hyp.tokens + [EOS_ID] * ended
            assert tree.scores[finals[rank]] == pytest.approx(hyp.log_prob, abs=1e-5)
        for node, parent in enumerate(tree.parents):
            if parent >= 0:
                assert tree.depths[node] == tree.depths[parent] + 1
                assert tree.scores[node] <= tree.scores[parent] + 1e-6  # log-probs only fall
        kept = [n for n in range(len(tree.parents)) if n not in tree.finals]
        per_depth = np.bincount([tree.depths[n] for n in kept])
        assert per_depth[0] == 1 and per_depth.max() <= CFG.beam_size


def test_forced_prefix_is_honoured_and_the_rest_searched():
    model = tiny_model(eos_bias=-3.0)
    src, src_lens = random_src(SRC_LENS)
    free = beam_search(model, src, src_lens, CFG)
    assert len(free[0][0].tokens) >= 2
    forced = [free[0][0].tokens[0] % 15 + 4, 7]  # a first token the search did not choose
    for hyps in beam_search(model, src, src_lens, CFG, forced=forced):
        assert all(h.tokens[:2] == forced for h in hyps)
    # with one beam, forcing what the search chose anyway changes nothing
    one = DecodeConfig(beam_size=1, max_len_ratio=1.5)
    (chosen,) = beam_search(model, src[:1], src_lens[:1], one)[0]
    (again,) = beam_search(model, src[:1], src_lens[:1], one, forced=chosen.tokens[:2])[0]
    assert again.tokens == chosen.tokens and again.log_prob == pytest.approx(chosen.log_prob)


def test_top_k_of_a_greedy_output_is_led_by_that_output():
    """Greedy picks the most probable token at every step, so teacher-forcing its own output
    must rank that token first, and the k probabilities must be sorted and sum to at most 1."""
    model = tiny_model(eos_bias=2.0)
    src, src_lens = random_src(SRC_LENS)
    hyps = greedy(model, src, src_lens, max_len_ratio=1.5)
    ids = [src[b, : n - 1].tolist() for b, n in enumerate(src_lens.tolist())]
    ended = [h.attn.size(0) == len(h.tokens) + 1 for h in hyps]
    split = EncodedSplit("own", ids, [h.tokens for h in hyps])
    found = force_decode(model, FakeVocabs(), split, range(len(ids)), top_k=4)
    for hyp, end, forced in zip(hyps, ended, found, strict=True):
        expected = hyp.tokens + [EOS_ID] * end
        assert forced.top_ids[: len(expected), 0].tolist() == expected
        assert (np.diff(forced.top_probs, axis=1) <= 1e-7).all()
        assert (forced.top_probs.sum(1) <= 1 + 1e-5).all()
        torch.testing.assert_close(torch.from_numpy(forced.attn[: len(expected)]), hyp.attn)


def test_records_hold_valid_grids_and_the_sentences_aer():
    from nmt.inference.explore import explore

    model = tiny_model(attention="multihead", eos_bias=1.0)
    sources, references = ["w5 w6 w7 w8", "w9 w10"], ["w11 w12 w13", "w14 w15 w16 w17"]
    gold = [({(0, 0), (1, 2)}, {(3, 1)}), ({(1, 3)}, set())]
    records = explore(model, FakeVocabs(), sources, CFG, references, gold, indices=[4, 9])
    assert [r["index"] for r in records] == [4, 9]
    for record, links, source in zip(records, gold, sources, strict=True):
        view = record["views"]["reference"]
        assert view["src"] == [f"\u2581{w}" for w in source.split()] + ["</s>"]
        assert view["attn"].shape == (len(view["tgt"]), len(view["src"]))
        np.testing.assert_allclose(view["attn"].sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(view["heads"].mean(0), view["attn"], atol=1e-5)
        assert view["src_words"] == list(range(len(view["src"]) - 1)) + [-1]
        predicted = word_alignment(view["attn"], view["src"][:-1], view["tgt"][:-1])
        expected = alignment_error_rate([predicted], [links[0]], [links[1]]).aer
        assert view["aer"] == pytest.approx(expected) == record["aer"]
        assert view["gold"]["sure"] == sorted(map(list, links[0]))
        own = record["views"]["hypothesis"]
        best = record["beam"]["nodes"]
        path = [best[node]["piece"] for node in record["beam"]["best"]][1:]
        output = Pieces().pieces(own["ids"][:-1])  # the drawn output is the searched one
        assert path[: len(output)] == output and own["ids"][-1] == EOS_ID
        assert record["hypothesis"] == Pieces().decode(own["ids"])
        assert len(own["topk"]) == len(own["tgt"]) and all(len(a) == 5 for a in own["topk"])
        assert own["gold"] is None and own["aer"] is None


def test_records_from_a_search_cut_at_its_length_limit_keep_every_piece():
    """Validation's records come from the greedy search's own attention; an output that hit the
    length limit has no EOS row, so no piece of it may be taken for EOS."""
    from nmt.inference.explore import assemble, searched_attention

    model = tiny_model(eos_bias=-20.0)  # never ends by itself
    src, src_lens = random_src(SRC_LENS[:2])
    hyps = greedy(model, src, src_lens, max_len_ratio=1.5)
    ids = [src[b, : n - 1].tolist() for b, n in enumerate(src_lens.tolist())]
    own = [searched_attention(h, i, FakeVocabs()) for h, i in zip(hyps, ids, strict=True)]
    sources = [" ".join(f"w{i}" for i in sentence) for sentence in ids]
    records = assemble(FakeVocabs(), sources, [h.tokens for h in hyps], own)
    for record, hyp in zip(records, hyps, strict=True):
        view = record["views"]["hypothesis"]
        assert view["attn"].shape[0] == len(hyp.tokens) == len(view["tgt"]) == len(view["ids"])
        assert view["tgt_words"] == list(range(len(hyp.tokens)))  # every piece a word, no EOS
        assert record["beam"] is None and EOS_ID not in view["ids"]
