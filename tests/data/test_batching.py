from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from nmt.config import BOS_ID, EOS_ID, PAD_ID
from nmt.data.batching import EncodedSplit, collate, epoch_batches, make_batches


def random_split(n: int, seed: int = 0) -> EncodedSplit:
    rng = random.Random(seed)
    src = [[rng.randrange(4, 50) for _ in range(rng.randrange(1, 40))] for _ in range(n)]
    tgt = [[rng.randrange(4, 50) for _ in range(rng.randrange(1, 40))] for _ in range(n)]
    return EncodedSplit("train", src, tgt)


@pytest.mark.parametrize("batch_tokens, batch_sents", [(400, 64), (2000, 16), (50, 8)])
def test_budget_respected_and_every_pair_appears_exactly_once(batch_tokens, batch_sents):
    split = random_split(500)
    batches = epoch_batches(split, batch_tokens, batch_sents, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for batch in batches:
        assert len(batch) <= batch_sents
        longest = max(len(split.src[i]) + 1 for i in batch) + max(
            len(split.tgt[i]) + 1 for i in batch
        )
        assert len(batch) == 1 or len(batch) * longest <= batch_tokens


@pytest.mark.parametrize("batch_tokens, batch_sents", [(400, 64), (90, 4), (5000, 128)])
def test_batches_are_cut_as_a_sentence_by_sentence_greedy_loop_cuts_them(batch_tokens, batch_sents):
    split = random_split(3000, seed=batch_sents)
    src, tgt = (np.array([len(s) + 1 for s in side]) for side in (split.src, split.tgt))
    order = np.lexsort((tgt, src))  # the length order the plan cuts
    expected, batch, longest_src, longest_tgt = [], [], 0, 0
    for i in order.tolist():
        grown_src, grown_tgt = max(longest_src, src[i]), max(longest_tgt, tgt[i])
        if batch and (
            len(batch) == batch_sents or (len(batch) + 1) * (grown_src + grown_tgt) > batch_tokens
        ):
            expected.append(batch)
            batch, grown_src, grown_tgt = [], src[i], tgt[i]
        batch, longest_src, longest_tgt = batch + [i], grown_src, grown_tgt
    expected.append(batch)
    assert epoch_batches(split, batch_tokens, batch_sents, seed=None) == expected
    assert make_batches([], [], batch_tokens, batch_sents) == []


def test_a_sentence_over_the_budget_gets_its_own_batch():
    batches = make_batches([100, 2, 3], [100, 2, 3], batch_tokens=50, batch_sents=10)
    assert [0] in batches and sorted(i for b in batches for i in b) == [0, 1, 2]


def test_length_bucketing_keeps_padding_low():
    split = random_split(2000)
    batches = epoch_batches(split, 1500, 64, seed=1)
    real = sum(len(s) + 1 for s in split.src)
    padded = sum(len(b) * max(len(split.src[i]) + 1 for i in b) for b in batches)
    assert padded / real < 1.05


def test_shuffle_is_deterministic_by_seed():
    split = random_split(300)
    assert epoch_batches(split, 500, 32, seed=7) == epoch_batches(split, 500, 32, seed=7)
    assert epoch_batches(split, 500, 32, seed=7) != epoch_batches(split, 500, 32, seed=8)


def test_unshuffled_batches_follow_length_order():
    batches = make_batches([5, 1, 3, 2], [1, 1, 1, 1], batch_tokens=1000, batch_sents=2)
    assert batches == [[1, 3], [2, 0]]


def test_collate_pads_and_places_bos_and_eos():
    split = EncodedSplit("t", src=[[10, 11, 12], [20]], tgt=[[30], [40, 41]])
    batch = collate(split, [0, 1])
    assert batch.src.tolist() == [[10, 11, 12, EOS_ID], [20, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.src_lens.tolist() == [4, 2]
    assert batch.tgt_in.tolist() == [[BOS_ID, 30, PAD_ID], [BOS_ID, 40, 41]]
    assert batch.tgt_out.tolist() == [[30, EOS_ID, PAD_ID], [40, 41, EOS_ID]]
    assert batch.indices.tolist() == [0, 1]
    assert batch.n_tgt_tokens == 5
    assert batch.to("cpu").src.dtype == torch.long
