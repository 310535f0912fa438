"""decode.workers: batches decoded in forked processes give exactly the one-process results."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nmt.config import DecodeConfig
from nmt.data.corpus import load_split
from nmt.inference.decoding import load_translator, translate_lines


@pytest.fixture
def one_thread():
    """One torch thread here and so in every worker: the same sums, bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("search", [{"beam_size": 1}, {"beam_size": 3, "n_best": 2}])
def test_workers_translate_exactly_as_one_process(trained_run, search, one_thread):
    translator = load_translator(str(trained_run))
    lines = load_split(translator.data, "test").src[:70]
    lines[5] = ""  # an empty line keeps its place and gets no hypothesis
    decode = replace(translator.decode, batch_size=8, **search)
    alone = translate_lines(translator, lines, decode, 250)
    shared = translate_lines(translator, lines, replace(decode, workers=2), 250)
    assert len(shared) == len(lines) and shared[5] == []
    for one, two in zip(alone, shared):
        assert [h.tokens for h in one] == [h.tokens for h in two]
        for a, b in zip(one, two):
            assert a.score == b.score and a.log_prob == b.log_prob
            assert torch.equal(a.attn, b.attn) and torch.equal(a.context, b.context)
    assert torch.get_num_threads() == 1  # the workers' thread setting stays in the workers


def test_workers_with_int8_and_a_shortlist(trained_run):
    translator = load_translator(str(trained_run))
    lines = load_split(translator.data, "test").src[:40]
    decode = replace(translator.decode, batch_size=8, precision="int8", shortlist=20)
    alone = translate_lines(translator, lines, decode, 250)
    shared = translate_lines(translator, lines, replace(decode, workers=3), 250)
    assert [h[0].tokens for h in alone] == [h[0].tokens for h in shared]


def test_a_worker_error_reaches_the_caller(trained_run, monkeypatch):
    import nmt.inference.beam

    def broken(*args, **kwargs):
        raise ValueError("beam search failed in a worker")

    translator = load_translator(str(trained_run))
    lines = load_split(translator.data, "test").src[:20]
    monkeypatch.setattr("nmt.inference.decoding.beam_search", broken)
    assert nmt.inference.beam.beam_search is not broken
    decode = replace(translator.decode, batch_size=8, beam_size=3, workers=2)
    with pytest.raises(ValueError, match="failed in a worker"):
        translate_lines(translator, lines, decode, 250)


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match=r"decode\.workers=0"):
        DecodeConfig(workers=0)
