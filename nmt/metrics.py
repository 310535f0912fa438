"""Corpus translation scores (sacreBLEU) and the alignment error rate of attention.

Translation scores are always computed by sacreBLEU on *detokenized* hypotheses against the
*untouched* references, and every score carries sacreBLEU's signature, so a number in a log or a
README says exactly how it was computed (casing, tokenizer, smoothing, version) and can be compared
with published results. Our own tokenization never leaks into a score.

The alignment error rate (AER) scores attention-derived word alignments against gold links; it
works on plain sets of ``(source_word, target_word)`` pairs, as produced by
:mod:`nmt.inference.align`.
Neither part imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF, TER

Link = tuple[int, int]


@dataclass(frozen=True)
class Score:
    """One corpus-level score with the sacreBLEU signature that makes it reproducible.

    Attributes:
        name: ``"BLEU"``, ``"chrF"`` or ``"TER"``.
        value: the score on sacreBLEU's 0-100 scale (TER: lower is better).
        signature: sacreBLEU's signature, e.g.
            ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``.
    """

    name: str
    value: float
    signature: str

    def __str__(self) -> str:
        return f"{self.name} = {self.value:.2f} ({self.signature})"


def _check_lengths(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    """Refuse misaligned or empty corpora: sacreBLEU would misreport or crash on them."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses but {len(references)} references; "
            "every hypothesis needs exactly one reference"
        )
    if not hypotheses:
        raise ValueError("cannot score an empty corpus (0 hypotheses, 0 references)")


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> list[Score]:
    """BLEU, chrF and TER of a detokenized corpus against one reference per sentence.

    sacreBLEU's defaults (mixed case, ``13a`` tokenization): the comparable choice for WMT-style
    reporting. Published Multi30k figures use lowercased Moses-tokenized text instead:
    ``moses_lowercase_bleu``.

    Returns:
        ``[BLEU, chrF, TER]`` scores, each with its signature.

    Raises:
        ValueError: when the two lists differ in length (both counts named) or are empty.
    """
    _check_lengths(hypotheses, references)
    metrics = (("BLEU", BLEU()), ("chrF", CHRF()), ("TER", TER()))
    hyps, refs = list(hypotheses), [list(references)]
    return [
        Score(name, float(metric.corpus_score(hyps, refs).score), str(metric.get_signature()))
        for name, metric in metrics
    ]


def moses_lowercase(lines: Sequence[str], lang: str) -> list[str]:
    """Lowercase, normalize punctuation and Moses-tokenize (sacremoses), XML-escaped as Moses does.

    This reproduces the ``*.lc.norm.tok.*`` files of Multi30k byte for byte, the text that
    published Multi30k BLEU figures are computed on (multi-bleu style).
    """
    try:
        from sacremoses import MosesPunctNormalizer, MosesTokenizer
    except ImportError as error:  # an optional dependency: only this score needs it
        raise ImportError(
            "tok_bleu=true needs sacremoses: pip install sacremoses (or pip install 'nmt[moses]')"
        ) from error
    normalizer, tokenizer = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)
    return [
        tokenizer.tokenize(normalizer.normalize(line.lower()), escape=True, return_str=True)
        for line in lines
    ]


def moses_lowercase_bleu(hypotheses: Sequence[str], references: Sequence[str], lang: str) -> Score:
    """BLEU as published Multi30k results compute it: both sides through ``moses_lowercase``,
    then sacreBLEU with ``tokenize="none"`` (its signature says ``tok:none``; ``case:mixed`` there
    only means sacreBLEU itself did not lowercase)."""
    _check_lengths(hypotheses, references)
    metric = BLEU(tokenize="none", force=True)  # tokenized on purpose: no sacreBLEU warning
    hyps = moses_lowercase(hypotheses, lang)
    refs = [moses_lowercase(references, lang)]
    score = metric.corpus_score(hyps, refs).score
    return Score("BLEU-lc-tok", float(score), f"moses-lc-norm-tok:{lang}|{metric.get_signature()}")


@dataclass(frozen=True)
class AlignmentScores:
    """Corpus-level (micro-averaged) alignment quality; all rates in [0, 1].

    Attributes:
        aer: alignment error rate, lower is better.
        precision: share of predicted links that are at least possible.
        recall: share of sure links that were predicted.
        sentences: how many sentence pairs were scored.
    """

    aer: float
    precision: float
    recall: float
    sentences: int


def _ratio(numerator: int, denominator: int) -> float:
    """A rate whose empty denominator means "no evidence", scored 0 rather than a crash."""
    return numerator / denominator if denominator else 0.0


def alignment_error_rate(
    predicted: Sequence[set[Link]], sure: Sequence[set[Link]], possible: Sequence[set[Link]]
) -> AlignmentScores:
    """Alignment error rate of Och & Ney (2003), micro-averaged over the corpus.

    With ``A`` the predicted links, ``S`` the sure gold links and ``P = S ∪ possible`` (the union is
    taken here, so ``possible`` may or may not repeat the sure links)::

        precision = |A ∩ P| / |A|
        recall    = |A ∩ S| / |S|
        AER       = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)

    Every count is summed over all sentences before dividing (micro-average), so long sentences
    weigh more, as in the standard evaluation scripts. A link missing from ``P`` costs precision;
    a sure link missing from ``A`` costs recall; merely possible links are never required.

    Empty denominators: a corpus with no predicted links has precision 0, one with no sure links
    has recall 0 (a model is never rewarded for predicting nothing), and when both ``|A|`` and
    ``|S|`` are 0 the AER is 1, matching ``AER = 1 - F1`` at precision = recall = 0.

    Args:
        predicted: per sentence, the predicted ``(source_word, target_word)`` links.
        sure: per sentence, the sure gold links.
        possible: per sentence, the possible gold links (sure ones may be included or not).

    Returns:
        AER, precision, recall and the number of sentences scored.

    Raises:
        ValueError: when the three lists differ in length (all counts named).
    """
    if not len(predicted) == len(sure) == len(possible):
        raise ValueError(
            f"got {len(predicted)} predicted alignments, {len(sure)} sure and "
            f"{len(possible)} possible gold alignments; they must match per sentence"
        )
    n_a = n_s = a_and_s = a_and_p = 0
    for a, s, p in zip(predicted, sure, possible, strict=True):
        a, s = set(a), set(s)
        n_a, n_s = n_a + len(a), n_s + len(s)
        a_and_s += len(a & s)
        a_and_p += len(a & (s | set(p)))
    aer = 1.0 - _ratio(a_and_s + a_and_p, n_a + n_s)  # 1 when both |A| and |S| are 0
    return AlignmentScores(
        aer=aer,
        precision=_ratio(a_and_p, n_a),
        recall=_ratio(a_and_s, n_s),
        sentences=len(predicted),
    )


@dataclass(frozen=True)
class Comparison:
    """A system against a baseline on one metric, by sacreBLEU's paired significance tests.

    Attributes:
        name: the metric, as sacreBLEU names it (``BLEU``, ``chrF2``, ``TER``).
        system, baseline: the corpus scores.
        system_ci, baseline_ci: half-widths of the 95 % confidence intervals of each system's
            mean score from paired bootstrap resampling (sacreBLEU's ``mean ± ci``).
        p_bootstrap: p-value of paired bootstrap resampling (1,000 resamples by default).
        p_randomization: p-value of approximate randomization (10,000 trials by default).
        signature: sacreBLEU's signature of the bootstrap test (seed and resamples included).
    """

    name: str
    system: float
    baseline: float
    system_ci: float
    baseline_ci: float
    p_bootstrap: float
    p_randomization: float
    signature: str

    @property
    def difference(self) -> float:
        return self.system - self.baseline


def paired_comparison(
    hypotheses: Sequence[str],
    baseline: Sequence[str],
    references: Sequence[str],
    resamples: int = 1000,
    trials: int = 10000,
) -> list[Comparison]:
    """BLEU, chrF and TER of ``hypotheses`` against ``baseline`` on the same references, with
    sacreBLEU's paired bootstrap resampling and approximate randomization (its own
    implementation and seed, ``SACREBLEU_SEED``, so figures match its command line)."""
    from sacrebleu.significance import PairedTest

    _check_lengths(hypotheses, references)
    _check_lengths(baseline, references)
    systems = [("baseline", list(baseline)), ("system", list(hypotheses))]
    refs = [list(references)]

    def run(test: str, samples: int) -> tuple[dict, dict]:
        metrics = {"BLEU": BLEU(), "chrF": CHRF(), "TER": TER()}
        return PairedTest(systems, metrics, refs, test, samples, n_ar_confidence=-1)()

    signatures, bootstrap = run("bs", resamples)
    _, randomization = run("ar", trials)
    return [
        Comparison(
            name,
            float(bootstrap[name][1].score),
            float(bootstrap[name][0].score),
            float(bootstrap[name][1].ci),
            float(bootstrap[name][0].ci),
            float(bootstrap[name][1].p_value),
            float(randomization[name][1].p_value),
            str(signatures[name]),
        )
        for name in bootstrap
        if name != "System"
    ]
