"""Translate a parallel split and score it: sacreBLEU against its references, AER of the attention.

The library core of nmt-evaluate, for any caller that wants figures rather than a printed table
(the command, scripts, tests). Scores are computed on detokenized output against the untouched
references. AER uses the attention of the model force-decoding the *reference*, because gold
links relate source words to reference words, not to whatever the model happened to generate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from nmt.config import DecodeConfig
from nmt.data.batching import EncodedSplit
from nmt.data.corpus import DataError, ParallelSplit
from nmt.inference.align import Link, parse_pharaoh, word_alignment
from nmt.inference.decoding import Translator, force_decode, translate_lines
from nmt.metrics import (
    AlignmentScores,
    Score,
    alignment_error_rate,
    corpus_scores,
    moses_lowercase_bleu,
)


@dataclass
class TestSetReport:
    name: str
    sentences: int
    scores: list[Score]
    seconds: float  # decoding time
    alignment: AlignmentScores | None = None


@dataclass
class GoldAlignments:
    """Gold links per sentence pair: sure and possible sets, and where they were read from."""

    sure: list[set[Link]]
    possible: list[set[Link]]
    origin: str

    @classmethod
    def from_pairs(cls, pairs: list[tuple[set[Link], set[Link]]], origin: str) -> GoldAlignments:
        """From ``(sure, possible)`` pairs, as ``parse_pharaoh``/``read_pharaoh`` give them."""
        return cls([sure for sure, _ in pairs], [possible for _, possible in pairs], origin)


def split_gold(split: ParallelSplit) -> GoldAlignments | None:
    """The gold links a split carries (the generated corpus, ``{split}.align`` files), if any."""
    if split.alignments is None:
        return None
    pairs = [
        parse_pharaoh(line, where=f"{split.origin}:{n}")
        for n, line in enumerate(split.alignments, start=1)
    ]
    return GoldAlignments.from_pairs(pairs, split.origin)


def forced_alignments(
    translator: Translator, split: ParallelSplit, method: str, threshold: float, max_tokens: int
) -> list[set[Link]]:
    """Word links from the attention of teacher-forcing each reference translation."""
    vocabs = translator.vocabs
    encoded = EncodedSplit(
        split.name,
        [s[:max_tokens] for s in vocabs.src.encode_batch(split.src)],
        [t[:max_tokens] for t in vocabs.tgt.encode_batch(split.tgt)],
    )
    forced = force_decode(translator.model, vocabs, encoded, range(len(encoded)))
    return [
        word_alignment(f.attn, f.src_labels[:-1], f.tgt_labels[:-1], method, threshold)
        for f in forced
    ]


def score_split(
    translator: Translator,
    split: ParallelSplit,
    decode: DecodeConfig,
    max_tokens: int,
    gold: GoldAlignments | None = None,
    align: tuple[str, float] = ("argmax", 0.3),
    tok_bleu: bool = False,
) -> TestSetReport:
    """Decode ``split`` (n-best 1) and score it; AER too when ``gold`` links are given.

    Args:
        max_tokens: source (and, for AER, reference) pieces kept per sentence.
        align: ``(method, threshold)`` turning attention into word links.
        tok_bleu: also BLEU on lowercased Moses-tokenized text (sacremoses).
    """
    started = time.perf_counter()
    nbest = translate_lines(translator, split.src, replace(decode, n_best=1), max_tokens)
    hypotheses = [translator.vocabs.tgt.decode(h[0].tokens) if h else "" for h in nbest]
    seconds = time.perf_counter() - started
    alignment = None
    if gold is not None:
        if len(gold.sure) != len(split):
            raise DataError(
                f"{gold.origin}: {len(gold.sure)} alignment lines for {len(split)} sentence pairs"
            )
        predicted = forced_alignments(translator, split, *align, max_tokens)
        alignment = alignment_error_rate(predicted, gold.sure, gold.possible)
    scores = corpus_scores(hypotheses, split.tgt)
    if tok_bleu:
        scores.append(moses_lowercase_bleu(hypotheses, split.tgt, translator.data.tgt))
    return TestSetReport(split.name, len(split), scores, seconds, alignment)
