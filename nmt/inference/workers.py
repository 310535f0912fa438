"""Decoding batches in parallel CPU processes (``decode.workers``), as CTranslate2's inter_threads.

A decoding step's matmuls are small (a batch of 64 rows) and its Python bookkeeping runs on one
core whatever torch's thread count, so on a CPU N single-threaded processes, each with whole
batches of its own, decode faster than one process with N intra-op threads. The processes are
forked once the model is loaded (and quantized), so they share its weights copy-on-write; each
takes the next batch when it is free and sends its hypotheses back as numpy arrays.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import torch

from nmt.inference.search import Hypothesis

Search = Callable[[np.ndarray], list[list[Hypothesis]]]

_search: Search | None = None  # what the forked processes run: set by the parent before the fork


def decode_in_workers(
    search: Search, batches: Sequence[np.ndarray], workers: int
) -> Iterator[list[list[Hypothesis]]]:
    """``search(batch)`` for every batch, in order, spread over ``workers`` forked processes
    with torch's threads shared among them (at least one each)."""
    global _search
    threads = max(1, torch.get_num_threads() // workers)
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        raise ValueError("decode.workers > 1 needs fork (Linux): use decode.workers=1") from None
    _search = search
    try:
        with context.Pool(workers, initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            for packed in pool.imap(_search_packed, batches):
                yield [[_unpack(hypothesis) for hypothesis in nbest] for nbest in packed]
    finally:
        _search = None


def _search_packed(batch: np.ndarray) -> list[list[Hypothesis]]:
    """In a worker: one batch's n-best lists, their tensors as numpy arrays (plain pickling,
    not torch's shared-memory file per tensor)."""
    assert _search is not None, "decode_in_workers sets the search before forking"
    with torch.no_grad():
        return [[_convert(h, lambda t: t.numpy()) for h in nbest] for nbest in _search(batch)]


def _unpack(hypothesis: Hypothesis) -> Hypothesis:
    return _convert(hypothesis, torch.from_numpy)


def _convert(hypothesis: Hypothesis, convert: Callable) -> Hypothesis:
    head_attn = hypothesis.head_attn
    return replace(
        hypothesis,
        attn=convert(hypothesis.attn),
        context=convert(hypothesis.context),
        head_attn=None if head_attn is None else convert(head_attn),
    )
