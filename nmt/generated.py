"""The built-in English->German corpus: rule-based sentences with gold word alignments.

Why it exists: the project needs default data that downloads nothing, trains in CPU minutes and,
above all, comes with *correct* word alignments, so attention can be scored (AER) rather than
eyeballed. Every sentence is built from "pieces", each knowing its English and German words; the
grammar only permutes pieces, so the Pharaoh links fall out of the construction.

The grammar is small (a few hundred lemmas, one German lemma per English word) but makes a model
learn what real translation needs:

* gender and case: definite (der/die/das/den/dem), demonstrative (dieser), indefinite (ein) and
  possessive/negative (mein, kein) determiners in nominative, accusative and dative; verbs and
  prepositions govern the case (``helps the woman`` -> ``hilft der Frau``; ``with``/``for``);
* adjective endings: weak after der/dieser, mixed after ein/mein/kein, strong with bare plurals;
* number: verb agreement (``sees``/``see`` -> ``sieht``/``sehen``), plural nouns, dative plural -n;
* reordering, so alignments are NOT monotonic: verb-second inversion after a fronted adverb
  (``today the man sees ...`` -> ``heute sieht der Mann ...``) or a fronted subordinate clause,
  a mid adverb placed after the German verb, and verb-final subordinate clauses
  (``..., weil der Mann den Hund sieht.``);
* many-to-one links: ``next to`` -> ``neben``, ``in front of`` -> ``vor``, ``as soon as`` ->
  ``sobald``.

Sentences are natural text: the first word is capitalised, German nouns are capitalised, German
puts a comma between clauses, the period is attached to the last word. Alignment indices refer to
whitespace-split words, so the period (and comma) travel with the word they are attached to.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from nmt.lexicon import (
    ADJECTIVE_TABLES,
    ADJECTIVES,
    ADVERBS,
    ANIMATE,
    CONJUNCTIONS,
    DEFINITE,
    DETERMINERS,
    EIN,
    NOUNS,
    PREPOSITIONS,
    STRONG,
    THAT,
    VERB_CASES,
    VERBS,
    Adjective,
    Adverb,
    Conj,
    Noun,
    Prep,
    Verb,
    inflect,
)

SPLITS = ("train", "valid", "test")
COMPLETE_MARKER = ".complete"
MIN_WORDS, MAX_WORDS = 4, 25


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


def _np_pieces(np: NP, case: str) -> list[Piece]:
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
        "subj": _np_pieces(c.subj, "nom"),
        "verb": [verb],
        "objs": [p for np, case in zip(c.objs, cases, strict=True) for p in _np_pieces(np, case)],
        "pp": [(c.pp.prep.en, (c.pp.prep.de,))] + _np_pieces(c.pp.np, c.pp.prep.case)
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
    return GeneratedPair(" ".join(en_words), " ".join(de_words), _format_links(links))


def _format_links(links: Sequence[tuple[int, int]]) -> str:
    return " ".join(f"{i}-{j}" for i, j in sorted(set(links)))


def reverse_alignment(line: str) -> str:
    """Swap Pharaoh ``i-j`` links into ``j-i`` (sorted), for training de->en on this corpus."""
    links = [tuple(int(x) for x in pair.split("-")) for pair in line.split()]
    return _format_links([(j, i) for i, j in links])


_FRAME_WEIGHTS = {"a": 70, "d": 15, "da": 15, "c": 1}


def _sample_np(rng: random.Random, animate: bool = False) -> NP:
    """A noun phrase; people/animals (subjects, dative objects) never take "no", which avoids
    most double negations ("no singer sends no bird")."""
    det = rng.choices(list(DETERMINERS), weights=(45, 10, 25, 10, 0 if animate else 10))[0]
    adj = rng.choice(ADJECTIVES) if rng.random() < 0.4 else None
    noun = rng.choice(NOUNS[:ANIMATE] if animate else NOUNS)
    return NP(det, adj, noun, rng.random() < 0.3)


def _sample_clause(rng: random.Random, frames: tuple[str, ...], may_front: bool) -> Clause:
    """A random clause; ``may_front`` allows a sentence-initial adverb (main clauses only)."""
    frame = rng.choices(frames, weights=[_FRAME_WEIGHTS[f] for f in frames])[0]
    verb = rng.choice([v for v in VERBS if v.frame == frame])
    objs = tuple(_sample_np(rng, animate=case == "dat") for case in VERB_CASES[frame])
    with_pp = frame != "c" and rng.random() < 0.3  # a PP before a that-clause reads badly
    pp = PP(rng.choice(PREPOSITIONS), _sample_np(rng)) if with_pp else None
    adverbs = [a for a in ADVERBS if may_front or not a.front]
    adverb = rng.choice(adverbs) if rng.random() < 0.3 else None
    return Clause(_sample_np(rng, animate=True), verb, objs, pp, adverb)


def sample_sentence(rng: random.Random) -> Sentence:
    """Draw one sentence tree from ``rng`` (the only source of randomness).

    Kinds: simple clause (35%), main + subordinate clause (25%), fronted subordinate clause
    (15%, German inverts the main clause) and a that-clause after say/think/... (25%).
    """
    kind = rng.choices(("simple", "main_first", "sub_first", "that"), weights=(35, 25, 15, 25))[0]
    plain = ("a", "d", "da")
    if kind == "simple":
        return Sentence(_sample_clause(rng, plain, may_front=True))
    sub = _sample_clause(rng, plain, may_front=False)
    if kind == "that":
        return Sentence(_sample_clause(rng, ("c",), may_front=True), THAT, sub)
    main = _sample_clause(rng, plain, may_front=kind == "main_first")
    return Sentence(main, rng.choice(CONJUNCTIONS), sub, sub_first=kind == "sub_first")


def _word_count_ok(pair: GeneratedPair) -> bool:
    return all(MIN_WORDS <= len(text.split()) <= MAX_WORDS for text in (pair.src, pair.tgt))


def _pair_stream(rng: random.Random) -> Iterator[GeneratedPair]:
    """Endless rendered pairs within the length limits (too short or long ones are redrawn)."""
    while True:
        pair = render(sample_sentence(rng))
        if _word_count_ok(pair):
            yield pair


def generate_pairs(n: int, seed: int) -> list[GeneratedPair]:
    """``n`` sentence pairs from ``random.Random(seed)``: identical on every run and platform.

    Duplicates are possible (use ``generate_splits`` for disjoint, deduplicated sets).
    """
    stream = _pair_stream(random.Random(seed))
    return [next(stream) for _ in range(n)]


def generate_splits(sizes: Sequence[int], seed: int) -> dict[str, list[GeneratedPair]]:
    """Train/valid/test sets of the given sizes with no source sentence repeated anywhere.

    Sentences are drawn from one seeded stream and kept only if their English side is new, so
    valid and test never leak into train. Raises ValueError when the grammar cannot produce that
    many distinct sentences within a generous number of draws.
    """
    if len(sizes) != 3 or min(sizes) < 0:
        raise ValueError(f"sizes must be three non-negative counts (train, valid, test): {sizes}")
    total = sum(sizes)
    max_draws = 20 * total + 1000
    stream = _pair_stream(random.Random(seed))
    seen: set[str] = set()
    unique: list[GeneratedPair] = []
    for _ in range(max_draws):
        if len(unique) == total:
            break
        pair = next(stream)
        if pair.src not in seen:
            seen.add(pair.src)
            unique.append(pair)
    if len(unique) < total:
        raise ValueError(
            f"the generated grammar gave only {len(unique)} distinct sentences in {max_draws} "
            f"draws, {total} were requested (sizes {list(sizes)}); ask for fewer"
        )
    bounds = [0, sizes[0], sizes[0] + sizes[1], total]
    return {name: unique[bounds[k] : bounds[k + 1]] for k, name in enumerate(SPLITS)}


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    """Write via a temporary file and ``os.replace`` so a reader never sees a half file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def write_splits(
    splits: dict[str, list[GeneratedPair]], directory: Path, src: str = "en", tgt: str = "de"
) -> None:
    """Write ``{split}.{src}`` (English), ``{split}.{tgt}`` (German) and ``{split}.align``.

    ``src``/``tgt`` name the suffixes of the English and German side; alignments index English
    words first, so de->en training reads the same files and applies ``reverse_alignment``.

    Completion protocol: the ``.complete`` marker is removed first and written last, listing the
    files, so after a crash at any point ``is_complete`` says False and the caller regenerates.
    """
    if (src, tgt) == ("de", "en"):
        raise ValueError("write the corpus as src='en', tgt='de'; reverse it when loading")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / COMPLETE_MARKER
    marker.unlink(missing_ok=True)
    names = []
    for split, pairs in splits.items():
        for suffix, field in ((src, "src"), (tgt, "tgt"), ("align", "alignment")):
            _write_lines(directory / f"{split}.{suffix}", [getattr(p, field) for p in pairs])
            names.append(f"{split}.{suffix}")
    _write_lines(marker, names)


def is_complete(directory: Path) -> bool:
    """True when ``write_splits`` finished: the marker exists and every file it lists is there."""
    marker = Path(directory) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    names = marker.read_text(encoding="utf-8").split()
    return all((Path(directory) / name).is_file() for name in names)
