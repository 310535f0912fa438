"""The built-in English->German corpus: rule-based sentences with gold word alignments.

Why it exists: the project needs default data that downloads nothing, trains in CPU minutes and,
above all, comes with *correct* word alignments, so attention can be scored (AER) rather than
eyeballed. This module samples sentence trees and writes the corpus files; ``grammar`` renders
a tree into English, German and the gold links, which fall out of its construction.

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

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from nmt.data.grammar import NP, PP, Clause, GeneratedPair, Sentence, format_links, render
from nmt.data.lexicon import (
    ADJECTIVES,
    ADVERBS,
    ANIMATE,
    CONJUNCTIONS,
    DETERMINERS,
    NOUNS,
    PREPOSITIONS,
    THAT,
    VERB_CASES,
    VERBS,
)
from nmt.files import write_text

SPLITS = ("train", "valid", "test")
COMPLETE_MARKER = ".complete"
MIN_WORDS, MAX_WORDS = 4, 25


def reverse_alignment(line: str) -> str:
    """Swap Pharaoh ``i-j`` links into ``j-i`` (sorted), for training de->en on this corpus."""
    links = [tuple(int(x) for x in pair.split("-")) for pair in line.split()]
    return format_links([(j, i) for i, j in links])


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
    """Complete or absent (``nmt.files``): a reader never sees a half file, and the ranks of a
    torchrun job writing the same deterministic corpus at once use distinct temporary names."""
    write_text(path, "".join(line + "\n" for line in lines))


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
