"""Tests for the built-in generated corpus: determinism, alignments, grammar, splits, files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.data import generated as g
from nmt.data import grammar
from nmt.data import lexicon as lex


@pytest.fixture(scope="module")
def pairs() -> list[grammar.GeneratedPair]:
    return sample(2000, seed=7)


def sample(n: int, seed: int) -> list[grammar.GeneratedPair]:
    """``n`` distinct pairs: the training side of ``generate_splits``."""
    return g.generate_splits([n, 0, 0], seed)["train"]


def _links(line: str) -> list[tuple[int, int]]:
    out = []
    for item in line.split():
        assert re.fullmatch(r"\d+-\d+", item), item
        i, j = item.split("-")
        out.append((int(i), int(j)))
    return out


def _has_crossing(links: list[tuple[int, int]]) -> bool:
    return any(i1 < i2 and j1 > j2 for i1, j1 in links for i2, j2 in links)


def _np(det: str, noun: str, plural: bool = False, adj: str | None = None) -> grammar.NP:
    noun_entry = next(n for n in lex.NOUNS if n.en == noun)
    adj_entry = next(a for a in lex.ADJECTIVES if a.en == adj) if adj else None
    return grammar.NP(det, adj_entry, noun_entry, plural)


def _verb(en: str) -> lex.Verb:
    return next(v for v in lex.VERBS if v.en == en)


def _lookup(table, en: str):
    return next(x for x in table if " ".join(x.en if isinstance(x.en, tuple) else (x.en,)) == en)


def test_same_seed_same_pairs_and_different_seed_differs() -> None:
    assert sample(300, seed=3) == sample(300, seed=3)
    assert sample(300, seed=3) != sample(300, seed=4)
    assert sample(50, seed=3) == sample(300, seed=3)[:50]


def test_output_does_not_depend_on_hash_randomisation() -> None:
    code = "from nmt.data.generated import generate_splits; print(generate_splits([200, 0, 0], 5))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(g.generate_splits([200, 0, 0], 5))


def test_alignments_are_valid_sorted_and_cover_every_word(pairs) -> None:
    for pair in pairs:
        src, tgt, links = pair.src.split(), pair.tgt.split(), _links(pair.alignment)
        assert links == sorted(set(links)), pair
        assert all(0 <= i < len(src) and 0 <= j < len(tgt) for i, j in links), pair
        assert {i for i, _ in links} == set(range(len(src))), pair
        assert {j for _, j in links} == set(range(len(tgt))), pair


def test_sentences_look_like_text(pairs) -> None:
    for pair in pairs:
        for text in (pair.src, pair.tgt):
            assert g.MIN_WORDS <= len(text.split()) <= g.MAX_WORDS
            assert text[0].isupper() and text.endswith(".") and text.count(".") == 1
            assert "  " not in text


def test_a_good_fraction_of_alignments_cross(pairs) -> None:
    crossing = sum(_has_crossing(_links(p.alignment)) for p in pairs) / len(pairs)
    assert crossing > 0.4


def test_simple_sentence_is_monotonic() -> None:
    s = grammar.Sentence(grammar.Clause(_np("the", "man"), _verb("see"), (_np("the", "dog"),)))
    assert grammar.render(s) == (
        "The man sees the dog.",
        "Der Mann sieht den Hund.",
        "0-0 1-1 2-2 3-3 4-4",
    )


def test_fronted_adverb_inverts_subject_and_verb() -> None:
    clause = grammar.Clause(
        _np("a", "woman", adj="old"), _verb("help"), (_np("this", "child"),), adverb=lex.ADVERBS[0]
    )
    pair = grammar.render(grammar.Sentence(clause))
    assert pair.src == "Today an old woman helps this child."
    assert pair.tgt == "Heute hilft eine alte Frau diesem Kind."
    assert pair.alignment == "0-0 1-2 2-3 3-4 4-1 5-5 6-6"


def test_subordinate_clause_is_verb_final_with_comma() -> None:
    main = grammar.Clause(
        _np("the", "dog", plural=True), _verb("love"), (_np("my", "cat", adj="red"),)
    )
    sub = grammar.Clause(
        _np("a", "girl"),
        _verb("give"),
        (_np("the", "teacher", plural=True), _np("a", "apple")),
        pp=grammar.PP(_lookup(lex.PREPOSITIONS, "next to"), _np("the", "bed")),
    )
    pair = grammar.render(grammar.Sentence(main, _lookup(lex.CONJUNCTIONS, "because"), sub))
    assert pair.src == (
        "The dogs love my red cat because a girl gives the teachers an apple next to the bed."
    )
    assert pair.tgt == (
        "Die Hunde lieben meine rote Katze, weil ein Mädchen den Lehrern einen Apfel neben dem "
        "Bett gibt."
    )
    links = _links(pair.alignment)
    assert (9, 16) in links  # gives -> gibt, moved to the end
    assert (14, 13) in links and (15, 13) in links  # next to -> neben


def test_fronted_subordinate_clause_inverts_main_clause() -> None:
    sub = grammar.Clause(_np("the", "woman"), _verb("see"), (_np("no", "bird", plural=True),))
    main = grammar.Clause(_np("a", "son"), _verb("trust"), (_np("the", "mother"),))
    pair = grammar.render(
        grammar.Sentence(main, _lookup(lex.CONJUNCTIONS, "as soon as"), sub, sub_first=True)
    )
    assert pair.src == "As soon as the woman sees no birds, a son trusts the mother."
    assert pair.tgt == "Sobald die Frau keine Vögel sieht, vertraut ein Sohn der Mutter."
    assert pair.alignment.startswith("0-0 1-0 2-0 ")


def test_that_clause_and_strong_plural_adjectives() -> None:
    main = grammar.Clause(_np("the", "king"), _verb("say"))
    sub = grammar.Clause(
        _np("a", "frog", plural=True, adj="green"), _verb("eat"), (_np("a", "cake"),)
    )
    pair = grammar.render(grammar.Sentence(main, lex.THAT, sub))
    assert pair.src == "The king says that green frogs eat a cake."
    assert pair.tgt == "Der König sagt, dass grüne Frösche einen Kuchen essen."


def test_fronted_adverb_in_subordinate_clause_is_rejected() -> None:
    sub = grammar.Clause(
        _np("the", "man"), _verb("see"), (_np("the", "dog"),), adverb=lex.ADVERBS[0]
    )
    main = grammar.Clause(_np("the", "king"), _verb("say"))
    with pytest.raises(ValueError, match="fronted adverb"):
        grammar.render(grammar.Sentence(main, lex.THAT, sub))


def test_subordinate_clauses_end_with_a_conjugated_verb(pairs) -> None:
    verb_forms = {v.de_3sg for v in lex.VERBS} | {v.de_pl for v in lex.VERBS}
    conjunctions = {c.de for c in lex.CONJUNCTIONS} | {lex.THAT.de}
    checked = 0
    for pair in pairs:
        for clause in re.split(r"[,.] ?", pair.tgt):
            words = clause.split()
            if words and words[0].lower() in conjunctions:
                assert words[-1] in verb_forms, pair.tgt
                checked += 1
    assert checked > len(pairs) // 3


# Which (gender or "p" for plural) a German determiner form can precede.
_DETERMINER_FITS = {
    "der": "mf", "die": "fp", "das": "n", "den": "mp", "dem": "mn",
    "ein": "mn", "eine": "f", "einen": "m", "einem": "mn", "einer": "f",
    "dieser": "mf", "diese": "fp", "dieses": "n", "diesen": "mp", "diesem": "mn",
    "mein": "mn", "meine": "fp", "meinen": "mp", "meinem": "mn", "meiner": "f",
    "kein": "mn", "keine": "fp", "keinen": "mp", "keinem": "mn", "keiner": "f",
}  # fmt: skip


def test_determiners_agree_with_the_noun_gender(pairs) -> None:
    singular = {n.de: n.gender for n in lex.NOUNS}
    plural = {form for n in lex.NOUNS for form in (n.de_pl, n.de_pl + "n")}
    checked = 0
    for pair in pairs:
        words = [w.strip(",.") for w in pair.tgt.split()]
        for k, word in enumerate(words[:-1]):
            det = word.lower()
            if det not in _DETERMINER_FITS:
                continue
            noun = (
                words[k + 1] if words[k + 1] in singular or words[k + 1] in plural else words[k + 2]
            )
            genders = ({singular[noun]} if noun in singular else set()) | (
                {"p"} if noun in plural else set()
            )
            assert genders & set(_DETERMINER_FITS[det]), (det, noun, pair.tgt)
            checked += 1
    assert checked > len(pairs)


@pytest.mark.parametrize(
    ("det", "noun", "plural", "case", "expected"),
    [
        ("the", "dog", False, "acc", "den großen Hund"),
        ("the", "cat", False, "dat", "der großen Katze"),
        ("the", "car", True, "dat", "den großen Autos"),
        ("this", "house", False, "nom", "dieses große Haus"),
        ("a", "house", False, "nom", "ein großes Haus"),
        ("a", "cat", False, "dat", "einer großen Katze"),
        ("a", "dog", True, "nom", "große Hunde"),
        ("a", "dog", True, "dat", "großen Hunden"),
        ("my", "dog", True, "nom", "meine großen Hunde"),
        ("no", "dog", False, "acc", "keinen großen Hund"),
    ],
)
def test_determiner_and_adjective_endings(det, noun, plural, case, expected) -> None:
    pieces = grammar.np_pieces(_np(det, noun, plural, adj="big"), case)
    assert " ".join(w for _, de in pieces for w in de) == expected


def _simple(subj: grammar.NP) -> grammar.Sentence:
    return grammar.Sentence(grammar.Clause(subj, _verb("see"), (_np("the", "dog"),)))


def test_nominative_subject_article_matches_gender() -> None:
    for noun in lex.NOUNS:
        pair = grammar.render(_simple(grammar.NP("the", None, noun, False)))
        expected = {"m": "Der", "f": "Die", "n": "Das"}[noun.gender]
        assert pair.tgt.split()[:2] == [expected, noun.de]


def test_splits_are_disjoint_and_sized() -> None:
    splits = g.generate_splits((400, 50, 60), seed=1)
    assert [len(splits[name]) for name in g.SPLITS] == [400, 50, 60]
    sources = [p.src for name in g.SPLITS for p in splits[name]]
    assert len(set(sources)) == len(sources)
    assert g.generate_splits([400, 50, 60], seed=1) == splits


def test_splits_fail_clearly_when_asked_too_much(monkeypatch) -> None:
    monkeypatch.setattr(g, "sample_sentence", lambda rng: _simple(_np("the", "man")))
    with pytest.raises(ValueError, match="distinct sentences"):
        g.generate_splits((3, 1, 1), seed=0)
    with pytest.raises(ValueError, match="three"):
        g.generate_splits((3, 1), seed=0)


def test_write_splits_and_is_complete(tmp_path: Path) -> None:
    splits = g.generate_splits((30, 5, 7), seed=2)
    out = tmp_path / "corpus"
    assert not g.is_complete(out)
    g.write_splits(splits, out)
    assert g.is_complete(out)
    for name, pairs in splits.items():
        texts = [
            (out / f"{name}.{ext}").read_text(encoding="utf-8") for ext in ("en", "de", "align")
        ]
        assert all(t.endswith("\n") and t.count("\n") == len(pairs) for t in texts)
        assert texts[1].splitlines() == [p.tgt for p in pairs]
    (out / "valid.de").unlink()  # a half-written corpus is not complete
    assert not g.is_complete(out)
    with pytest.raises(ValueError):
        g.write_splits(splits, out, src="de", tgt="en")


def test_reverse_alignment_round_trip(pairs) -> None:
    assert g.reverse_alignment("0-1 1-0 2-0") == "0-1 0-2 1-0"
    assert g.reverse_alignment("") == ""
    for pair in pairs[:200]:
        assert g.reverse_alignment(g.reverse_alignment(pair.alignment)) == pair.alignment


def test_vocabulary_is_a_few_hundred_words() -> None:
    drawn = sample(5000, seed=11)
    for side in ("src", "tgt"):
        vocab = {w.strip(",.").lower() for p in drawn for w in getattr(p, side).split()}
        assert 150 <= len(vocab) <= 1500, (side, len(vocab))
