"""Attention matrices -> word alignments, and the Pharaoh ``i-j`` format they are stored in.

The model attends over SentencePiece *pieces*, but gold alignments (and people) think in
whitespace-separated *words*. :func:`word_alignment` merges a piece-level attention matrix into a
word-level one and reads links off it; :func:`word_starts` says which word each piece belongs to.
Links are always ``(source_word, target_word)`` pairs of 0-based indices, the order Pharaoh files
use, and feed :func:`nmt.metrics.alignment_error_rate` directly. Plain numpy, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from os import PathLike

import numpy as np

Link = tuple[int, int]
WORD_BOUNDARY = "\u2581"  # SentencePiece's "▁", marking a piece that begins a word
METHODS = ("argmax", "threshold")
_TOKEN = re.compile(r"(\d+)([-p?])(\d+)")


def parse_pharaoh(
    line: str, one_based: bool = False, where: str = ""
) -> tuple[set[Link], set[Link]]:
    """Read one Pharaoh line into sure and possible links.

    ``i-j`` is a sure link, ``ipj`` or ``i?j`` a possible one (the conventions of the Och & Ney and
    Mihalcea gold sets). The possible set does *not* repeat the sure links (a link given both ways
    counts as sure); callers form ``P = S ∪ possible`` themselves, as
    :func:`nmt.metrics.alignment_error_rate` does.

    Args:
        line: whitespace-separated tokens; an empty line is a sentence without links.
        one_based: the file counts words from 1 (classic gold sets); indices are shifted to 0-based.
        where: location for error messages, e.g. ``"gold.txt:17"``.

    Returns:
        ``(sure, possible)`` sets of 0-based ``(source, target)`` pairs.

    Raises:
        ValueError: on a malformed token, or an index 0 in a 1-based line; the message names the
            token and, when given, ``where``.
    """
    prefix = f"{where}: " if where else ""
    shift = 1 if one_based else 0
    sure: set[Link] = set()
    possible: set[Link] = set()
    for token in line.split():
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise ValueError(
                f"{prefix}malformed alignment token {token!r}; "
                "expected 'i-j' (sure) or 'ipj' / 'i?j' (possible)"
            )
        i, kind, j = int(match[1]) - shift, match[2], int(match[3]) - shift
        if i < 0 or j < 0:
            raise ValueError(f"{prefix}alignment token {token!r} has index 0 in a 1-based line")
        (sure if kind == "-" else possible).add((i, j))
    return sure, possible - sure


def read_pharaoh(
    path: str | PathLike[str], one_based: bool = False
) -> list[tuple[set[Link], set[Link]]]:
    """Read a Pharaoh file, one ``(sure, possible)`` pair per line (blank lines included).

    Blank lines are kept as empty sets so the result stays line-aligned with the corpus.

    Raises:
        ValueError: on a malformed token, naming ``file:line`` (1-based) and the token.
    """
    with open(path, encoding="utf-8") as handle:
        return [
            parse_pharaoh(line, one_based, where=f"{path}:{number}")
            for number, line in enumerate(handle, start=1)
        ]


def format_pharaoh(links: Iterable[Link]) -> str:
    """Write links as ``"i-j"`` tokens sorted by ``(i, j)``; no links give the empty string."""
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


def word_starts(pieces: Sequence[str]) -> list[int]:
    """The 0-based word index of every SentencePiece piece.

    A piece beginning with ``▁`` begins a new word; other pieces continue the current one, except
    that the very first piece always begins word 0. SentencePiece sometimes emits a lone ``▁``
    (a word boundary followed by a piece it could not merge with, e.g. ``["▁", "("]``): the boundary
    belongs to the *next* piece's word, and that next piece begins the word even without its own
    ``▁``. A trailing lone ``▁`` belongs to the last word. This way the number of distinct indices
    equals the number of whitespace-split words of the detokenized text, which is what gold
    alignments index.

    Args:
        pieces: the pieces of one sentence, without BOS/EOS.

    Returns:
        One word index per piece, non-decreasing.
    """
    indices: list[int | None] = []
    word, boundary = -1, True  # the sentence start acts as a boundary
    for piece in pieces:
        if piece == WORD_BOUNDARY:
            boundary = True
            indices.append(None)  # resolved below, once the next piece's word is known
            continue
        if boundary or piece.startswith(WORD_BOUNDARY):
            word += 1
        boundary = False
        indices.append(word)
    resolved: list[int] = []
    following = max(word, 0)  # a trailing lone boundary joins the last word
    for index in reversed(indices):
        following = following if index is None else index
        resolved.append(following)
    return resolved[::-1]


def _membership(pieces: Sequence[str]) -> np.ndarray:
    """One-hot ``(pieces, words)`` matrix: entry ``[p, w]`` is 1 when piece p belongs to word w."""
    words = word_starts(pieces)
    onehot = np.zeros((len(words), max(words, default=-1) + 1))
    onehot[np.arange(len(words)), words] = 1.0
    return onehot


def word_attention(
    attn: np.ndarray, src_pieces: Sequence[str], tgt_pieces: Sequence[str]
) -> np.ndarray:
    """Merge piece attention ``(T, S)`` into word attention ``(target words, source words)``.

    ``W[tw, sw]`` is the *mean* over the target pieces of word ``tw`` of the *sum* over the source
    pieces of word ``sw``: attention mass to a source word is split over its pieces, so it is added
    up; each target piece is its own attention distribution, so a word's pieces are averaged and
    rows keep summing to (at most) 1.

    ``attn`` may carry one extra trailing column (attention to the source EOS) and one extra
    trailing row (the step that emitted the target EOS); both are dropped, without renormalising,
    since EOS is not a word of either sentence.

    Raises:
        ValueError: when ``attn`` is not 2-D or its shape fits neither the pieces nor pieces + EOS.
    """
    attn = np.asarray(attn, dtype=float)
    n_tgt, n_src = len(tgt_pieces), len(src_pieces)
    if (
        attn.ndim != 2
        or attn.shape[0] not in (n_tgt, n_tgt + 1)
        or attn.shape[1] not in (n_src, n_src + 1)
    ):
        raise ValueError(
            f"attention of shape {attn.shape} does not fit {n_tgt} target and "
            f"{n_src} source pieces (optionally plus one EOS row and column)"
        )
    attn = attn[:n_tgt, :n_src]
    src_words, tgt_words = _membership(src_pieces), _membership(tgt_pieces)
    summed = attn @ src_words  # (T, source words)
    return (tgt_words.T @ summed) / tgt_words.sum(axis=0)[:, None]  # (target words, source words)


def word_alignment(
    attn: np.ndarray,
    src_pieces: Sequence[str],
    tgt_pieces: Sequence[str],
    method: str = "argmax",
    threshold: float = 0.3,
) -> set[Link]:
    """Read word links off a piece-level attention matrix.

    The matrix is first merged to words by :func:`word_attention` (EOS row/column dropped). Then

    * ``argmax``: each target word links to the source word it attends to most (ties: the
      leftmost), one link per target word;
    * ``threshold``: every pair with word attention ``>= threshold``, plus the argmax link, so
      every target word keeps at least one link.

    Args:
        attn: attention ``(T, S)`` of target piece t over source piece s, optionally
            ``(T + 1, S + 1)`` with EOS; anything numpy can convert (a CPU tensor works).
        src_pieces: source pieces, without BOS/EOS.
        tgt_pieces: target pieces, without BOS/EOS.
        method: ``"argmax"`` or ``"threshold"``.
        threshold: minimum word attention for a link under ``"threshold"``.

    Returns:
        ``(source_word, target_word)`` links; empty when either side has no pieces.

    Raises:
        ValueError: on an unknown method or an attention shape that fits neither side.
    """
    if method not in METHODS:
        raise ValueError(f"unknown alignment method {method!r}; choose one of {list(METHODS)}")
    if not src_pieces or not tgt_pieces:
        return set()
    words = word_attention(attn, src_pieces, tgt_pieces)
    links = {(int(sw), tw) for tw, sw in enumerate(words.argmax(axis=1))}
    if method == "threshold":
        links |= {(int(sw), int(tw)) for tw, sw in np.argwhere(words >= threshold)}
    return links


def attention_entropy(attn: np.ndarray) -> np.ndarray:
    """Entropy in nats of each attention row, -sum p log p with 0 log 0 = 0.

    Low entropy means sharp, alignment-like attention; log(S) means uniform. Zeros (padding) are
    skipped, so padded rows give the entropy of their real part.

    Args:
        attn: (..., S) attention distributions over the last axis.

    Returns:
        (...) entropies, never NaN for rows containing zeros.
    """
    p = np.asarray(attn, dtype=float)
    log_p = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * log_p).sum(axis=-1)
