"""Validation: teacher-forced loss and perplexity, greedy BLEU/chrF, AER against gold links, and
the attention to show.

Returns plain numbers and arrays; ``train.py`` decides what to log and keep. The plotted
alignments are teacher-forced over a fixed set of sentences, so their axes never change and
TensorBoard's step slider shows alignment emerging over training.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from nmt.config import PAD_ID, DecodeConfig
from nmt.data.batching import EncodedSplit, collate, epoch_batches
from nmt.data.prepare import PreparedCorpus
from nmt.data.tokenizer import Vocabularies
from nmt.inference.align import Link, attention_entropy, word_alignment
from nmt.inference.decoding import (
    ForcedAttention,
    force_decode,
    forced_attention,
    search_split,
)
from nmt.inference.explore import assemble, searched_attention
from nmt.inference.scoring import split_gold
from nmt.metrics import alignment_error_rate, corpus_scores
from nmt.model import Seq2Seq


@dataclass
class ValidationResult:
    loss: float  # mean cross-entropy per target token (EOS included, no label smoothing)
    ppl: float
    bleu: float
    chrf: float
    seconds: float
    samples: list[tuple[str, str, str]] = field(default_factory=list)  # source, reference, output
    plots: list[ForcedAttention] = field(default_factory=list)  # teacher-forced attention
    attn_rows: list[np.ndarray] = field(default_factory=list)  # (N_i,S_i) real rows per batch
    context_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    aer: float | None = None  # of the teacher-forced attention, when the split has gold links
    entropy: float = 0.0  # mean attention entropy per target piece, nats
    explored: list[dict] = field(default_factory=list)  # the explorer's records
    explore_seconds: float = 0.0  # building the records (their inputs are computed anyway)

    def metric(self, name: str) -> float:
        return getattr(self, name)


@torch.no_grad()
def validate(
    model: Seq2Seq,
    corpus: PreparedCorpus,
    decode: DecodeConfig,
    max_sentences: int,
    plot_sentences: int,
    device: torch.device,
    explore_sentences: int = 0,
) -> ValidationResult:
    """Score ``model`` on the corpus' validation split.

    Args:
        max_sentences: decode at most this many sentences for BLEU/chrF (0: all); the loss
            and the AER always cover the whole split.
        plot_sentences: how many sentences (the first ones, always the same) to return the
            attention of.
        explore_sentences: how many (the first ones) to return explorer records of: built
            from what validation computes anyway (the loss pass' attention over the reference,
            the greedy outputs and their attention), so they cost next to nothing.
    """
    split, vocabs, raw = corpus.encoded["valid"], corpus.vocabs, corpus.raw["valid"]
    sources, references = raw.src, raw.tgt
    gold = split_gold(raw)
    if gold is not None:
        gold.check(raw)  # links that cannot belong to the split would give a wrong AER
    started, was_training = time.perf_counter(), model.training
    model.eval()
    total_loss, total_tokens, attn_rows, context_values = 0.0, 0, [], []
    links: list[set[Link]] = [set() for _ in range(len(split))]
    shown = min(len(split), explore_sentences)
    read: list[ForcedAttention] = [None] * shown  # type: ignore[list-item]
    for indices in epoch_batches(split, 8192, decode.batch_size, seed=None):
        batch = collate(split, indices).to(device)
        out = model.loss(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out)
        total_loss += float(out.loss)
        total_tokens += batch.n_tgt_tokens
        attn_rows.append(out.attn[batch.tgt_out != PAD_ID].float().cpu().numpy())
        context_values.append(out.context[batch.tgt_out != PAD_ID].float().flatten()[::97].cpu())
        if gold is not None:
            _word_links(out.attn.float().cpu().numpy(), split, indices, vocabs, links)
        for b, i in enumerate(indices):
            if i < shown:
                read[i] = forced_attention(out, b, split.src[i], split.tgt[i], vocabs)
    loss = total_loss / max(1, total_tokens)
    aer = None if gold is None else alignment_error_rate(links, gold.sure, gold.possible).aer
    count = len(split) if max_sentences <= 0 else min(len(split), max_sentences)
    greedy_cfg = replace(decode, beam_size=1, n_best=1, workers=1)  # no fork inside training
    shown_split = split.subset(range(max(count, shown)))
    found = search_split(model, shown_split, greedy_cfg, device, corpus.shortlist)
    hypotheses = [vocabs.tgt.decode(nbest[0].tokens) for nbest in found[:count]]
    scores = {s.name: s.value for s in corpus_scores(hypotheses, references[:count])}
    samples = [
        (sources[i], references[i], hypotheses[i]) for i in range(min(count, plot_sentences))
    ]
    plots = force_decode(model, vocabs, split, range(min(len(split), plot_sentences)))
    explore_started = time.perf_counter()
    explored = assemble(
        vocabs,
        sources[:shown],
        [nbest[0].tokens for nbest in found[:shown]],
        [searched_attention(found[i][0], split.src[i], vocabs) for i in range(shown)],
        references[:shown],
        read,
        None if gold is None else list(zip(gold.sure[:shown], gold.possible[:shown])),
        range(shown),
    )
    explore_seconds = time.perf_counter() - explore_started
    model.train(was_training)
    return ValidationResult(
        loss,
        math.exp(min(loss, 50.0)),
        scores["BLEU"],
        scores["chrF"],
        time.perf_counter() - started,
        samples,
        plots,
        attn_rows,
        torch.cat(context_values).numpy(),
        aer,
        float(np.mean(np.concatenate([attention_entropy(rows) for rows in attn_rows]))),
        explored,
        explore_seconds,
    )


def _word_links(
    attn: np.ndarray,
    split: EncodedSplit,
    indices: list[int],
    vocabs: Vocabularies,
    links: list[set[Link]],
) -> None:
    """Word links (argmax) of a batch's teacher-forced attention (B,T,S), into ``links``."""
    for b, i in enumerate(indices):
        src, tgt = vocabs.src.pieces(split.src[i]), vocabs.tgt.pieces(split.tgt[i])
        if src and tgt:
            links[i] = word_alignment(attn[b, : len(tgt), : len(src)], src, tgt)
