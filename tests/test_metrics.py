"""Tests for nmt.metrics: sacreBLEU scores with signatures, and hand-computed AER."""

from __future__ import annotations

import math

import pytest
from conftest import MULTI30K_RAW

from nmt.metrics import (
    AlignmentScores,
    Score,
    alignment_error_rate,
    corpus_scores,
    moses_lowercase,
    moses_lowercase_bleu,
)


def test_identical_corpus_scores_perfectly() -> None:
    lines = ["the cat sat on the mat .", "a dog barked ."]
    scores = {score.name: score.value for score in corpus_scores(lines, lines)}
    assert scores["BLEU"] == pytest.approx(100.0)
    assert scores["chrF"] == pytest.approx(100.0)
    assert scores["TER"] == pytest.approx(0.0)


def hand_bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU of whitespace-tokenized text (Papineni et al., 2002): clipped n-gram counts
    summed over the corpus, geometric mean of the four precisions, brevity penalty."""
    matches, totals, hyp_len, ref_len = [0] * 4, [0] * 4, 0, 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, r = hyp.split(), ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            h_grams = [tuple(h[i : i + n]) for i in range(len(h) - n + 1)]
            r_grams = [tuple(r[i : i + n]) for i in range(len(r) - n + 1)]
            matches[n - 1] += sum(min(h_grams.count(g), r_grams.count(g)) for g in set(h_grams))
            totals[n - 1] += len(h_grams)
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / 4
    brevity = min(0.0, 1 - ref_len / hyp_len)
    return 100 * math.exp(log_precision + brevity)


def test_bleu_matches_hand_computation() -> None:
    # n-gram precisions of "a b c d e" against "a b c d f": 4/5, 3/4, 2/3, 1/2; equal lengths so
    # BP = 1; BLEU = 100 * (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 100 * 0.2 ** 0.25 = 66.874...
    hyps, refs = ["a b c d e"], ["a b c d f"]
    assert corpus_scores(hyps, refs)[0].value == pytest.approx(100 * 0.2**0.25, abs=1e-9)
    # two sentences, a shorter hypothesis side (brevity penalty), repeated words (clipping)
    hyps = ["the cat sat on the the mat .", "a dog barked at the postman ."]
    refs = ["the cat sat on a mat .", "the dog barked loudly at the postman today ."]
    assert corpus_scores(hyps, refs)[0].value == pytest.approx(hand_bleu(hyps, refs), abs=1e-9)


def test_ter_counts_edits_per_reference_word() -> None:
    # one insertion turns the hypothesis into the 5-word reference: TER = 100 * 1/5
    assert corpus_scores(["the cat sat ."], ["the cat sat down ."])[2].value == pytest.approx(20.0)


def test_all_three_metrics_carry_signatures() -> None:
    scores = corpus_scores(["the cat sat ."], ["the cat sat down ."])
    assert [score.name for score in scores] == ["BLEU", "chrF", "TER"]
    for score in scores:
        assert isinstance(score, Score)
        assert "version:" in score.signature and "nrefs:1" in score.signature
        assert 0.0 < score.value < 100.0
    assert "tok:13a" in scores[0].signature and "case:mixed" in scores[0].signature


def test_score_str_shows_value_and_signature() -> None:
    score = Score("BLEU", 37.1234, "nrefs:1|case:mixed|version:2.6.0")
    assert str(score) == "BLEU = 37.12 (nrefs:1|case:mixed|version:2.6.0)"


def test_moses_lowercase_bleu_ignores_case_and_tokenizes_like_moses() -> None:
    pytest.importorskip("sacremoses")
    assert moses_lowercase(['The dog\'s ball, "red".'], "en") == [
        "the dog &apos;s ball , &quot; red . &quot;"  # English normalization moves '."' inside
    ]
    refs = ["A man rides a bike.", "Two dogs play in the snow."]
    shouting = ["a MAN rides a bike .", "two dogs play in the snow."]
    perfect = moses_lowercase_bleu(shouting, refs, "en")
    assert perfect.value == pytest.approx(100.0)
    hyps = ["A man rides a horse.", "Two dogs play."]
    expected = hand_bleu(
        ["a man rides a horse .", "two dogs play ."],
        ["a man rides a bike .", "two dogs play in the snow ."],
    )
    assert moses_lowercase_bleu(hyps, refs, "en").value == pytest.approx(expected)


@pytest.mark.skipif(not MULTI30K_RAW.is_dir(), reason="../shared/data/multi30k is not present")
@pytest.mark.parametrize("lang", ["en", "de"])
def test_moses_lowercase_reproduces_the_multi30k_tokenized_files(lang) -> None:
    pytest.importorskip("sacremoses")
    import gzip

    raw = gzip.open(MULTI30K_RAW / f"test_2016_flickr.{lang}.gz", "rt").read().splitlines()
    tok_file = MULTI30K_RAW.parent / "tok" / f"test_2016_flickr.lc.norm.tok.{lang}.gz"
    assert moses_lowercase(raw, lang) == gzip.open(tok_file, "rt").read().splitlines()


def test_mismatched_lengths_name_both_counts() -> None:
    with pytest.raises(ValueError, match=r"2 hypotheses.*3 references"):
        corpus_scores(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"3 hypotheses.*1 references"):
        corpus_scores(["a", "b", "c"], ["a"])


def test_empty_corpus_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        corpus_scores([], [])


def test_aer_possible_link_counts_for_precision_only() -> None:
    # A = {(0,0),(1,1),(2,1)}, S = {(0,0),(1,1)}, P = S ∪ {(2,1)}:
    # |A∩S| = 2, |A∩P| = 3; precision 3/3, recall 2/2, AER = 1 - (2+3)/(3+2) = 0.
    result = alignment_error_rate([{(0, 0), (1, 1), (2, 1)}], [{(0, 0), (1, 1)}], [{(2, 1)}])
    assert result == AlignmentScores(aer=0.0, precision=1.0, recall=1.0, sentences=1)


def test_aer_nonzero_by_hand() -> None:
    # A = {(0,0),(1,2),(2,1)}, S = {(0,0),(1,1)}, P = S ∪ {(2,1)}:
    # A∩S = {(0,0)} -> 1; A∩P = {(0,0),(2,1)} -> 2;
    # precision 2/3, recall 1/2, AER = 1 - (1+2)/(3+2) = 2/5.
    result = alignment_error_rate([{(0, 0), (1, 2), (2, 1)}], [{(0, 0), (1, 1)}], [{(2, 1)}])
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(1 / 2)
    assert result.aer == pytest.approx(2 / 5)


def test_possible_may_repeat_sure_links() -> None:
    sure = [{(0, 0), (1, 1)}]
    apart = alignment_error_rate([{(0, 0), (1, 2), (2, 1)}], sure, [{(2, 1)}])
    joined = alignment_error_rate([{(0, 0), (1, 2), (2, 1)}], sure, [{(0, 0), (1, 1), (2, 1)}])
    assert apart == joined


def test_perfect_and_disjoint_alignments() -> None:
    gold = [{(0, 0), (1, 2), (2, 1)}]
    perfect = alignment_error_rate(gold, gold, [set()])
    assert (perfect.aer, perfect.precision, perfect.recall) == (0.0, 1.0, 1.0)
    disjoint = alignment_error_rate([{(0, 1), (1, 0)}], gold, [set()])
    assert (disjoint.aer, disjoint.precision, disjoint.recall) == (1.0, 0.0, 0.0)


def test_aer_is_micro_averaged_over_sentences() -> None:
    # Sentence 1: A = S = {(0,0),(1,1)}            -> |A|=2, |S|=2, |A∩S|=2, |A∩P|=2 (AER 0).
    # Sentence 2: A = {(0,1),(1,0),(2,2),(3,3)}, S = {(0,0),(1,1),(2,2),(3,3)}, possible {(0,1)}
    #                                              -> |A|=4, |S|=4, |A∩S|=2, |A∩P|=3 (AER 3/8).
    # Corpus: |A|=6, |S|=6, |A∩S|=4, |A∩P|=5: precision 5/6, recall 4/6,
    # AER = 1 - (4+5)/(6+6) = 1/4, not the macro mean (0 + 3/8)/2 = 3/16.
    predicted = [{(0, 0), (1, 1)}, {(0, 1), (1, 0), (2, 2), (3, 3)}]
    sure = [{(0, 0), (1, 1)}, {(0, 0), (1, 1), (2, 2), (3, 3)}]
    result = alignment_error_rate(predicted, sure, [set(), {(0, 1)}])
    assert result.aer == pytest.approx(1 / 4)
    assert result.precision == pytest.approx(5 / 6)
    assert result.recall == pytest.approx(4 / 6)
    assert result.sentences == 2


def test_aer_empty_denominators_score_zero() -> None:
    nothing = alignment_error_rate([set()], [{(0, 0)}], [set()])
    assert (nothing.aer, nothing.precision, nothing.recall) == (1.0, 0.0, 0.0)
    no_sure = alignment_error_rate([{(0, 0), (1, 1)}], [set()], [{(0, 0)}])
    # |A|=2, |S|=0, |A∩P|=1: precision 1/2, recall 0 (no sure links), AER = 1 - 1/2.
    assert (no_sure.aer, no_sure.precision, no_sure.recall) == (0.5, 0.5, 0.0)
    empty = alignment_error_rate([], [], [])
    assert (empty.aer, empty.precision, empty.recall, empty.sentences) == (1.0, 0.0, 0.0, 0)
    assert not any(math.isnan(value) for value in (empty.aer, empty.precision, empty.recall))


def test_aer_mismatched_lengths_name_all_counts() -> None:
    with pytest.raises(ValueError, match=r"2 predicted.*1 sure.*3 possible"):
        alignment_error_rate([set(), set()], [set()], [set(), set(), set()])


def sacrebleu_cli_table(tmp_path, systems: dict[str, list[str]], refs: list[str], test: str):
    """sacreBLEU's own command line on the same files: (score, ci or None, p) per metric."""
    import re
    import subprocess
    import sys

    paths = {}
    for name, lines in {"ref": refs, **systems}.items():
        paths[name] = tmp_path / f"{name}.txt"
        paths[name].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    args = [str(paths["ref"]), "-i", str(paths["base"]), str(paths["sys"]), f"--paired-{test}"]
    out = subprocess.run(
        [sys.executable, "-m", "sacrebleu", *args, "-m", "bleu", "chrf", "ter", "-f", "text"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("│")]
    system_row, p_row = rows[2], rows[3]
    cells = [c.strip() for c in system_row.split("│")[2:-1]]
    p_values = [float(p) for p in re.findall(r"p = ([0-9.]+)", p_row)]
    parsed = []
    for cell, p in zip(cells, p_values, strict=True):
        numbers = [float(x) for x in re.findall(r"[0-9]+\.[0-9]+", cell)]  # score [mean, ci]
        parsed.append((numbers[0], numbers[-1] if len(numbers) == 3 else None, p))
    return parsed


def test_paired_comparison_matches_sacrebleus_command_line(tmp_path) -> None:
    import random

    from nmt.metrics import paired_comparison

    rng = random.Random(3)
    words = "a the man dog cat runs sits on in park red blue".split()
    refs = [" ".join(rng.choices(words, k=rng.randint(4, 9))) for _ in range(80)]

    def noisy(line: str, rate: float) -> str:
        return " ".join(w if rng.random() > rate else rng.choice(words) for w in line.split())

    base = [noisy(line, 0.30) for line in refs]
    system = [noisy(line, 0.25) for line in refs]
    ours = paired_comparison(system, base, refs)
    assert [c.name for c in ours] == ["BLEU", "chrF2", "TER"]
    for test in ("bs", "ar"):
        cli = sacrebleu_cli_table(tmp_path, {"base": base, "sys": system}, refs, test)
        for c, (score, ci, p) in zip(ours, cli, strict=True):
            assert round(c.system, 1) == score
            assert round(c.p_bootstrap if test == "bs" else c.p_randomization, 4) == p
            if test == "bs":
                assert round(c.system_ci, 1) == ci
    assert any(0.01 < c.p_bootstrap < 0.99 for c in ours)  # a case the p-value discriminates
    assert ours[0].difference == pytest.approx(ours[0].system - ours[0].baseline)
