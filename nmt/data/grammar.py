"""Sentence trees and how they are rendered: English text, its German translation, gold links.

Why it is its own module: a sentence tree (NP, PP, Clause, Sentence) is turned into an English
sentence, its German translation and the Pharaoh word alignment between them deterministically
here, kept apart from the random sampling and the corpus files in ``nmt.data.generated``. Every
sentence is built from "pieces", each knowing its English and German words; German word order only
permutes pieces, so the links fall out of the construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from nmt.data.lexicon import (
    ADJECTIVE_TABLES,
    DEFINITE,
    DETERMINERS,
    EIN,
    STRONG,
    VERB_CASES,
    Adjective,
    Adverb,
    Conj,
    Noun,
    Prep,
    Verb,
    inflect,
)


class NP(NamedTuple):
    det: str  # a DETERMINERS key
    adj: Adjective | None
    noun: Noun
    plural: bool


class PP(NamedTuple):
    prep: Prep
    np: NP


class Clause(NamedTuple):
    subj: NP
    verb: Verb
    objs: tuple[NP, ...] = ()  # in the verb frame's order: dative before accusative
    pp: PP | None = None
    adverb: Adverb | None = None


class Sentence(NamedTuple):
    """A main clause, optionally with a subordinate clause (``conj`` is THAT for "c" verbs)."""

    main: Clause
    conj: Conj | None = None
    sub: Clause | None = None
    sub_first: bool = False


class GeneratedPair(NamedTuple):
    src: str  # English
    tgt: str  # German
    alignment: str  # Pharaoh "i-j" links, i indexing src words, j tgt words


Piece = tuple[tuple[str, ...], tuple[str, ...]]  # (English words, German words), linked all-to-all


def np_pieces(np: NP, case: str) -> list[Piece]:
    """The determiner, adjective and noun pieces of a noun phrase in ``case``, in German order."""
    en_sg, en_pl, stem, adj_type = DETERMINERS[np.det]
    gender = "p" if np.plural else np.noun.gender
    has_det = bool(en_pl) or not np.plural  # "a" has no plural: bare noun, strong adjective
    noun_de = np.noun.de_pl if np.plural else np.noun.de
    if np.plural and case == "dat" and not noun_de.endswith(("n", "s")):
        noun_de += "n"
    first_en = np.adj.en if np.adj else np.noun.en_pl if np.plural else np.noun.en
    pieces: list[Piece] = []
    if has_det:
        en_det = en_pl if np.plural else en_sg
        if en_det == "a" and first_en[0] in "aeiou":
            en_det = "an"
        table = DEFINITE if stem == "d" else STRONG if stem == "dies" else EIN
        de_det = (
            inflect(table, case, gender) if stem == "d" else stem + inflect(table, case, gender)
        )
        pieces.append(((en_det,), (de_det,)))
    if np.adj:
        ending = inflect(ADJECTIVE_TABLES[adj_type if has_det else "strong"], case, gender)
        pieces.append(((np.adj.en,), (np.adj.de + ending,)))
    pieces.append(((np.noun.en_pl if np.plural else np.noun.en,), (noun_de,)))
    return pieces


# German role order per clause mode; English is always [front adv] subj [mid adv] verb objs pp.
_DE_ORDERS = {
    "main": ("subj", "verb", "adv", "objs", "pp"),
    "front": ("adv", "verb", "subj", "objs", "pp"),  # verb second after a fronted adverb
    "inverted": ("verb", "subj", "adv", "objs", "pp"),  # after a fronted subordinate clause
    "sub": ("subj", "adv", "objs", "pp", "verb"),  # verb final
}


def _clause_layout(c: Clause, mode: str) -> tuple[list[Piece], list[int]]:
    """Pieces of a clause in English order and the permutation giving German order."""
    plural = c.subj.plural
    verb = ((c.verb.en if plural else c.verb.en_3sg,), (c.verb.de_pl if plural else c.verb.de_3sg,))
    cases = VERB_CASES[c.verb.frame]
    roles: dict[str, list[Piece]] = {
        "adv": [((c.adverb.en,), (c.adverb.de,))] if c.adverb else [],
        "subj": np_pieces(c.subj, "nom"),
        "verb": [verb],
        "objs": [p for np, case in zip(c.objs, cases, strict=True) for p in np_pieces(np, case)],
        "pp": [(c.pp.prep.en, (c.pp.prep.de,))] + np_pieces(c.pp.np, c.pp.prep.case)
        if c.pp
        else [],
    }
    front = c.adverb is not None and c.adverb.front
    if front and mode != "main":
        raise ValueError("a fronted adverb needs a main clause that starts the sentence")
    en_roles = ("adv", "subj") if front else ("subj", "adv")
    en_roles += ("verb", "objs", "pp")
    pieces: list[Piece] = []
    index: dict[str, range] = {}
    for role in en_roles:
        index[role] = range(len(pieces), len(pieces) + len(roles[role]))
        pieces += roles[role]
    return pieces, [i for role in _DE_ORDERS["front" if front else mode] for i in index[role]]


def _sentence_layout(s: Sentence) -> tuple[list[Piece], list[int], int]:
    """Pieces in English order, their German order, and how many belong to the first clause.

    The first clause comes first in both languages (only words inside a clause move), which is
    where the comma goes.
    """
    if s.sub is None or s.conj is None:
        pieces, order = _clause_layout(s.main, "main")
        return pieces, order, len(pieces)
    conj: Piece = (s.conj.en, (s.conj.de,))
    sub_pieces, sub_order = _clause_layout(s.sub, "sub")
    main_pieces, main_order = _clause_layout(s.main, "inverted" if s.sub_first else "main")
    if s.sub_first:
        first = [conj] + sub_pieces
        order = [0] + [i + 1 for i in sub_order] + [i + len(first) for i in main_order]
        return first + main_pieces, order, len(first)
    first = main_pieces
    order = main_order + [len(first)] + [i + len(first) + 1 for i in sub_order]
    return first + [conj] + sub_pieces, order, len(first)


def _capitalise(word: str) -> str:
    return word[:1].upper() + word[1:]


def render(s: Sentence) -> GeneratedPair:
    """Turn a sentence tree into text plus gold alignments (public so tests can build cases)."""
    pieces, order, n_first = _sentence_layout(s)
    en_words: list[str] = []
    en_spans: list[range] = []
    for en, _ in pieces:
        en_spans.append(range(len(en_words), len(en_words) + len(en)))
        en_words += en
    de_words: list[str] = []
    de_spans: dict[int, range] = {}
    for k in order:
        de_spans[k] = range(len(de_words), len(de_words) + len(pieces[k][1]))
        de_words += pieces[k][1]
    links = sorted((i, j) for k in range(len(pieces)) for i in en_spans[k] for j in de_spans[k])
    if s.sub is not None:
        if s.sub_first:  # English marks a fronted clause only; German separates every clause
            en_words[en_spans[n_first - 1][-1]] += ","
        de_words[de_spans[order[n_first - 1]][-1]] += ","
    en_words[0], de_words[0] = _capitalise(en_words[0]), _capitalise(de_words[0])
    en_words[-1] += "."
    de_words[-1] += "."
    return GeneratedPair(" ".join(en_words), " ".join(de_words), format_links(links))


def format_links(links: Sequence[tuple[int, int]]) -> str:
    return " ".join(f"{i}-{j}" for i, j in sorted(set(links)))
