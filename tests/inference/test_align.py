"""nmt.inference.align: Pharaoh I/O, piece-to-word mapping and attention-derived word links."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nmt.inference.align import (
    format_pharaoh,
    parse_pharaoh,
    read_pharaoh,
    word_alignment,
    word_attention,
    word_starts,
)

B = "\u2581"  # SentencePiece's word boundary "▁"


def test_parse_format_round_trip() -> None:
    sure, possible = parse_pharaoh("2-1 0-0 1-2")
    assert sure == {(0, 0), (1, 2), (2, 1)} and possible == set()
    assert format_pharaoh(sure) == "0-0 1-2 2-1"
    assert parse_pharaoh(format_pharaoh(sure))[0] == sure
    assert format_pharaoh([]) == ""
    assert parse_pharaoh("") == (set(), set())
    assert format_pharaoh([(10, 2), (2, 10), (2, 3)]) == "2-3 2-10 10-2"  # numeric, not text order


def test_one_based_lines_shift_to_zero_based() -> None:
    assert parse_pharaoh("1-1 2-3 3p2", one_based=True) == ({(0, 0), (1, 2)}, {(2, 1)})
    with pytest.raises(ValueError, match="'0-1'.*1-based"):
        parse_pharaoh("0-1", one_based=True)


def test_possible_links_with_p_and_question_mark() -> None:
    sure, possible = parse_pharaoh("0-0 1p1 2?2 0p0")
    assert sure == {(0, 0)}
    assert possible == {(1, 1), (2, 2)}  # (0, 0) is sure, so not repeated as possible


@pytest.mark.parametrize("token", ["1x2", "1-", "-1", "a-b", "1-2-3", "1--2", "1p", "1-2,"])
def test_malformed_token_is_named(token: str) -> None:
    expected = re.escape(f"gold.txt:17: malformed alignment token '{token}'")
    with pytest.raises(ValueError, match=expected):
        parse_pharaoh(f"0-0 {token} 1-1", where="gold.txt:17")
    with pytest.raises(ValueError, match="^malformed"):
        parse_pharaoh(token)


def test_read_pharaoh_keeps_blank_lines_and_names_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "gold.align"
    good.write_text("1-1 2p2\n\n3-1\n", encoding="utf-8")
    assert read_pharaoh(good, one_based=True) == [
        ({(0, 0)}, {(1, 1)}),
        (set(), set()),
        ({(2, 0)}, set()),
    ]
    bad = tmp_path / "bad.align"
    bad.write_text("0-0 1-1\n\n0-0 oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{bad}:3: ") + ".*'oops'"):
        read_pharaoh(bad)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([f"{B}The", f"{B}ma", "n", f"{B}sees", "."], [0, 1, 1, 2, 2]),
        (["The", f"{B}man"], [0, 1]),  # a first piece without "▁" still starts word 0
        ([f"{B}The", B, "(", "x", ")", f"{B}end"], [0, 1, 1, 1, 1, 2]),  # lone "▁" joins "(" word
        ([B, "(", "x"], [0, 0, 0]),
        ([B, f"{B}The"], [0, 0]),  # a lone boundary before a word piece makes no phantom word
        ([f"{B}a", B], [0, 0]),  # a trailing lone boundary belongs to the last word
        ([], []),
    ],
)
def test_word_starts(pieces: list[str], expected: list[int]) -> None:
    assert word_starts(pieces) == expected
    words = "".join(pieces).replace(B, " ").split()
    assert len(set(expected)) == len(words)  # indices match whitespace-split detokenized words


# Source "the man sleeps" as pieces ▁the ▁ma n ▁sleeps (+ EOS column); target "der Mann schläft"
# as ▁der ▁Man n ▁schläft (+ EOS row).
SRC = [f"{B}the", f"{B}ma", "n", f"{B}sleeps"]
TGT = [f"{B}der", f"{B}Man", "n", f"{B}schläft"]
ATTN = np.array(
    [
        # the   ma    n     sleeps EOS
        [0.60, 0.20, 0.10, 0.00, 0.10],  # ▁der      -> the .6, man .3, sleeps 0
        [
            0.30,
            0.25,
            0.25,
            0.10,
            0.10,
        ],  # ▁Man      -> the .3, man .5, sleeps .1 (piece argmax: "the")
        [0.10, 0.15, 0.15, 0.50, 0.10],  # n         -> the .1, man .3, sleeps .5
        [0.05, 0.10, 0.10, 0.70, 0.05],  # ▁schläft  -> the .05, man .2, sleeps .7
        [0.00, 0.00, 0.00, 0.10, 0.90],  # EOS row, dropped
    ]
)
# Word matrix: "Mann" is the mean of its two pieces' rows: (.3+.1)/2, (.5+.3)/2, (.1+.5)/2.
WORDS = np.array([[0.60, 0.30, 0.00], [0.20, 0.40, 0.30], [0.05, 0.20, 0.70]])


def test_word_attention_sums_source_pieces_and_averages_target_pieces() -> None:
    np.testing.assert_allclose(word_attention(ATTN, SRC, TGT), WORDS, atol=1e-12)
    np.testing.assert_allclose(word_attention(ATTN[:4, :4], SRC, TGT), WORDS, atol=1e-12)


def test_argmax_word_alignment_with_subwords_and_eos() -> None:
    expected = {(0, 0), (1, 1), (2, 2)}  # (source_word, target_word)
    assert word_alignment(ATTN, SRC, TGT) == expected
    assert word_alignment(ATTN[:4, :4], SRC, TGT) == expected  # without EOS row/column
    assert word_alignment(ATTN.tolist(), SRC, TGT) == expected  # any array-like


def test_threshold_word_alignment_adds_strong_links_and_keeps_argmax() -> None:
    # >= .25: der -> the (.6), man (.3); Mann -> man (.4), sleeps (.3); schläft -> sleeps (.7).
    links = word_alignment(ATTN, SRC, TGT, method="threshold", threshold=0.25)
    assert links == {(0, 0), (1, 0), (1, 1), (2, 1), (2, 2)}
    # Nothing reaches .95, yet every target word keeps its argmax link.
    assert word_alignment(ATTN, SRC, TGT, method="threshold", threshold=0.95) == {
        (0, 0),
        (1, 1),
        (2, 2),
    }


def test_diagonal_piece_attention_gives_identity_alignment() -> None:
    pieces = [f"{B}w{k}" for k in range(5)]
    for attn in (np.eye(5), np.eye(6)):  # with and without EOS row/column
        assert word_alignment(attn, pieces, pieces) == {(k, k) for k in range(5)}
        assert word_alignment(attn, pieces, pieces, method="threshold") == {
            (k, k) for k in range(5)
        }


def test_links_are_source_then_target() -> None:
    src = [f"{B}a", f"{B}b", f"{B}c"]
    tgt = [f"{B}x", f"{B}y"]
    attn = np.array(
        [
            [0.0, 0.0, 1.0],  # target 0 attends source 2
            [1.0, 0.0, 0.0],
        ]
    )  # target 1 attends source 0
    assert word_alignment(attn, src, tgt) == {(2, 0), (0, 1)}


def test_bad_method_shape_and_empty_sides() -> None:
    with pytest.raises(ValueError, match="'viterbi'.*argmax.*threshold"):
        word_alignment(ATTN, SRC, TGT, method="viterbi")
    with pytest.raises(ValueError, match=r"\(5, 5\).*3 target and 4 source"):
        word_alignment(ATTN, SRC, TGT[:3])
    with pytest.raises(ValueError, match="does not fit"):
        word_alignment(ATTN[0], SRC, TGT)
    assert word_alignment(np.zeros((0, 0)), [], []) == set()
    assert word_alignment(np.zeros((1, 0)), [], [f"{B}x"]) == set()
