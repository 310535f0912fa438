"""Translate a parallel split and score it: sacreBLEU against its references, AER of the attention.

The library core of nmt-evaluate, for any caller that wants figures rather than a printed table
(the command, scripts, tests). Scores are computed on detokenized output against the untouched
references. AER uses the attention of the model force-decoding the *reference*, because gold
links relate source words to reference words, not to whatever the model happened to generate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

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
    hypotheses: list[str] = field(default_factory=list, repr=False)  # detokenized, in order


@dataclass
class GoldAlignments:
    """Gold links per sentence pair: sure and possible sets, and where they were read from."""

    sure: list[set[Link]]
    possible: list[set[Link]]
    origin: str

    @classmethod
    def from_pairs(
        cls, pairs: list[tuple[set[Link], set[Link]]], origin: str, reverse: bool = False
    ) -> GoldAlignments:
        """From ``(sure, possible)`` pairs, as ``parse_pharaoh``/``read_pharaoh`` give them;
        ``reverse``: the file lists target-source links."""
        if reverse:
            pairs = [({(j, i) for i, j in s}, {(j, i) for i, j in p}) for s, p in pairs]
        return cls([sure for sure, _ in pairs], [possible for _, possible in pairs], origin)

    def check(self, split: ParallelSplit) -> None:
        """Refuse links that cannot belong to ``split``: a line count that differs, or a word
        index past the end of its sentence (often a 1-based or target-source file)."""
        if len(self.sure) != len(split):
            raise DataError(
                f"{self.origin}: {len(self.sure)} alignment lines for {len(split)} sentence pairs"
            )
        for number, (sure, possible) in enumerate(zip(self.sure, self.possible), start=1):
            src_words = len(split.src[number - 1].split())
            tgt_words = len(split.tgt[number - 1].split())
            for i, j in sorted(sure | possible):
                if i >= src_words or j >= tgt_words:
                    raise DataError(
                        f"{self.origin}:{number}: link {i}-{j} lies outside the sentence pair "
                        f"({src_words} source words, {tgt_words} target words); a 1-based file "
                        "needs alignments_one_based=true, a target-source one "
                        "alignments_order=tgt-src"
                    )


def split_gold(
    split: ParallelSplit, one_based: bool = False, reverse: bool = False
) -> GoldAlignments | None:
    """The gold links a split carries (the generated corpus, ``{split}.align`` files), if any."""
    if split.alignments is None:
        return None
    origin = split.alignments_origin or split.origin
    pairs = [
        parse_pharaoh(line, one_based, where=f"{origin}:{n}")
        for n, line in enumerate(split.alignments, start=1)
    ]
    return GoldAlignments.from_pairs(pairs, origin, reverse)


def forced_alignments(
    translator: Translator, split: ParallelSplit, method: str, threshold: float
) -> list[set[Link]]:
    """Word links from the attention of teacher-forcing each reference translation, whole
    (what is scored is never cut)."""
    vocabs = translator.vocabs
    encoded = EncodedSplit(
        split.name, vocabs.src.encode_batch(split.src), vocabs.tgt.encode_batch(split.tgt)
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
        max_tokens: source pieces kept per sentence for translation (longer ones are cut, with a
            warning); the references force-decoded for AER are never cut.
        align: ``(method, threshold)`` turning attention into word links.
        tok_bleu: also BLEU on lowercased Moses-tokenized text (sacremoses).
    """
    started = time.perf_counter()
    hypotheses = translate_split(translator, split, decode, max_tokens)
    seconds = time.perf_counter() - started
    alignment = None
    if gold is not None:
        gold.check(split)
        predicted = forced_alignments(translator, split, *align)
        alignment = alignment_error_rate(predicted, gold.sure, gold.possible)
    scores = corpus_scores(hypotheses, split.tgt)
    if tok_bleu:
        scores.append(moses_lowercase_bleu(hypotheses, split.tgt, translator.data.tgt))
    return TestSetReport(split.name, len(split), scores, seconds, alignment, hypotheses)


def translate_split(
    translator: Translator, split: ParallelSplit, decode: DecodeConfig, max_tokens: int
) -> list[str]:
    """The detokenized best translation of every source sentence of ``split``, in order."""
    nbest = translate_lines(translator, split.src, replace(decode, n_best=1), max_tokens)
    return [translator.vocabs.tgt.decode(h[0].tokens) if h else "" for h in nbest]
