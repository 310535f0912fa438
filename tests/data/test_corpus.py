from __future__ import annotations

import json

import pytest
from conftest import MULTI30K_RAW, SRC_LINES, TGT_LINES, write_text

from nmt.config import DataConfig
from nmt.data.corpus import DataError, clean, load_files, load_split, read_lines
from nmt.data.hub import load_hub


def test_files_source_reads_plain_and_gzipped_splits(files_root):
    cfg = DataConfig(source="files", root=str(files_root))
    train = load_split(cfg, "train")
    assert train.src == SRC_LINES and train.tgt == TGT_LINES
    assert load_split(cfg, "valid").src == SRC_LINES  # "valid" finds val.*


def test_files_source_reads_tsv_and_alignments(tmp_path):
    write_text(tmp_path / "train.tsv", ["a b\tx y", "c\tz"])
    write_text(tmp_path / "train.align", ["0-0 1-1", "0-0"])
    pairs = load_files(tmp_path, "train", "en", "de")
    assert pairs.src == ["a b", "c"] and pairs.tgt == ["x y", "z"]
    assert pairs.alignments == ["0-0 1-1", "0-0"]


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path):
    write_text(tmp_path / "train.en", ["a", "b", "c"])
    write_text(tmp_path / "train.de", ["x", "y"])
    with pytest.raises(DataError) as error:
        load_files(tmp_path, "train", "en", "de")
    message = str(error.value)
    assert "train.en has 3 lines" in message and "train.de has 2" in message


def test_undecodable_utf8_names_file_and_line(tmp_path):
    (tmp_path / "bad.en").write_bytes(b"fine\nstill fine\n" + b"caf\xe9\n")
    with pytest.raises(DataError, match=r"bad\.en:3: not valid UTF-8"):
        read_lines(tmp_path / "bad.en")


def test_unreadable_files_are_named(tmp_path):
    import gzip

    whole = gzip.compress("".join(f"line {n}\n" for n in range(2000)).encode())
    (tmp_path / "cut.en.gz").write_bytes(whole[: len(whole) // 2])  # a copy that stopped halfway
    (tmp_path / "plain.en.gz").write_bytes(b"not gzip at all\n")
    (tmp_path / "dir.en").mkdir()
    for name in ("cut.en.gz", "plain.en.gz", "dir.en", "missing.en"):
        with pytest.raises(DataError, match=rf"{name}: cannot read it \("):
            read_lines(tmp_path / name)


def test_tsv_with_wrong_column_count_names_the_line(tmp_path):
    write_text(tmp_path / "train.tsv", ["a\tb", "only one column"])
    with pytest.raises(DataError, match=r"train\.tsv:2: expected 2 tab-separated columns, found 1"):
        load_files(tmp_path, "train", "en", "de")


def test_missing_split_file_or_directory_is_reported(tmp_path, files_root):
    with pytest.raises(DataError, match="split 'test_2099' not found"):
        load_files(files_root, "test_2099", "en", "de")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    write_text(lonely / "train.en", ["a"])
    with pytest.raises(DataError, match=r"train\.de\[\.gz\] is missing"):
        load_files(lonely, "train", "en", "de")
    with pytest.raises(DataError, match="is not a directory"):
        load_files(tmp_path / "nowhere", "train", "en", "de")


def test_misaligned_gold_alignment_file_is_an_error(files_root):
    write_text(files_root / "test.align", ["0-0"])
    with pytest.raises(DataError, match="test.align has 1 lines"):
        load_files(files_root, "test", "en", "de")


def test_hub_translation_dict_format_from_local_jsonl(tmp_path):
    rows = [{"translation": {"de": t, "en": s}} for s, t in zip(SRC_LINES, TGT_LINES)]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = DataConfig(source="hf", name=str(path), src="en", tgt="de")
    pairs = load_split(cfg, "train")
    assert pairs.src == SRC_LINES and pairs.tgt == TGT_LINES


def test_hub_column_per_language_format_from_parquet_and_saved_dataset(tmp_path):
    import datasets

    table = {"en": SRC_LINES, "de": TGT_LINES}
    datasets.Dataset.from_dict(table).to_parquet(str(tmp_path / "train.parquet"))
    pairs = load_hub(str(tmp_path / "train.parquet"), None, "train", "de", "en")
    assert pairs.src == TGT_LINES and pairs.tgt == SRC_LINES
    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(table),
            "validation": datasets.Dataset.from_dict(table),
        }
    ).save_to_disk(str(saved))
    assert load_hub(str(saved), None, "valid", "en", "de").tgt == TGT_LINES  # valid -> validation


def test_hub_unknown_language_or_split_is_named(tmp_path):
    import datasets

    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"en": SRC_LINES, "de": TGT_LINES})}
    ).save_to_disk(str(saved))
    with pytest.raises(DataError, match="data.tgt='fr' is not a language of dataset"):
        load_hub(str(saved), None, "train", "en", "fr")
    with pytest.raises(DataError, match="has no split 'test'; it has: train"):
        load_hub(str(saved), None, "test", "en", "de")


def test_cleaning_reports_counts_by_reason(files_root):
    pairs = load_files(files_root, "train", "en", "de")
    cleaned, report = clean(pairs, min_len=1, max_len=4, max_len_ratio=3.0)
    assert report.kept == len(cleaned) == 3
    assert report.dropped == {"empty": 1, "longer than 4 words": 1}
    assert "  " not in cleaned.src


def test_cleaning_length_ratio_filter():
    from nmt.data.corpus import ParallelSplit

    pairs = ParallelSplit("train", ["a", "a b c d"], ["x y z w", "x y"], "memory")
    cleaned, report = clean(pairs, max_len_ratio=2.0)
    assert cleaned.src == ["a b c d"] and report.dropped == {"length ratio above 2": 1}


def test_generated_source_builds_its_cache_once(generated_cfg, monkeypatch):
    import nmt.data.generated as generated_module

    calls = []
    real = generated_module.generate_splits
    monkeypatch.setattr(
        generated_module, "generate_splits", lambda *args: calls.append(args) or real(*args)
    )
    test = load_split(generated_cfg, "test")
    assert len(test) == 50 and test.alignments is not None and len(test.alignments) == 50
    again = load_split(generated_cfg, "train")
    assert len(calls) == 1  # the second split comes from the files the first one wrote
    assert len(again) == 600 and load_split(generated_cfg, "test").src == test.src
    assert len(calls) == 1


def test_generated_source_reverses_alignments_for_german_to_english(generated_cfg):
    from dataclasses import replace

    en_de = load_split(generated_cfg, "valid")
    de_en = load_split(replace(generated_cfg, src="de", tgt="en"), "valid")
    assert de_en.src == en_de.tgt
    first = {tuple(map(int, link.split("-"))) for link in en_de.alignments[0].split()}
    flipped = {tuple(map(int, link.split("-")))[::-1] for link in de_en.alignments[0].split()}
    assert first == flipped


def test_generated_source_rejects_other_languages(generated_cfg):
    from dataclasses import replace

    with pytest.raises(DataError, match="English-German"):
        load_split(replace(generated_cfg, tgt="fr"), "train")


@pytest.mark.skipif(not MULTI30K_RAW.is_dir(), reason="../shared/data/multi30k is not present")
def test_multi30k_preset_on_local_copy():
    cfg = DataConfig(source="multi30k", root=str(MULTI30K_RAW), src="de", tgt="en")
    assert len(load_split(cfg, "valid")) == 1014
    test = load_split(cfg, "test_2016_flickr")
    assert len(test) == 1000 and test.src[0] and test.tgt[0]


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 22])
def test_lines_read_in_blocks_are_the_lines_of_the_file(tmp_path, block_bytes):
    from nmt.data.corpus import line_blocks

    text = "first\r\n\nü ber\n" + "x" * 100 + "\n  spaced  \nno newline at the end"
    (tmp_path / "f.en").write_bytes(text.encode())
    expected = [line.rstrip("\r") for line in text.split("\n")]
    blocks = list(line_blocks(tmp_path / "f.en", block_bytes))
    assert [line for block in blocks for line in block] == expected
    assert read_lines(tmp_path / "f.en") == expected


@pytest.mark.parametrize("block_bytes", [3, 1 << 22])
def test_undecodable_utf8_in_a_later_block_names_its_line_and_byte(tmp_path, block_bytes):
    from nmt.data.corpus import line_blocks

    (tmp_path / "bad.en").write_bytes(b"one\ntwo\nthree\nab\xffc\nfive\n")
    with pytest.raises(
        DataError, match=r"bad\.en:4: not valid UTF-8 \(invalid start byte at byte 2"
    ):
        list(line_blocks(tmp_path / "bad.en", block_bytes))


def test_cleaning_matches_a_pair_by_pair_loop():
    import random

    from nmt.data.corpus import ParallelSplit

    rng = random.Random(3)
    words = ["a", "bb", " ", "\t", "  c ", ""]
    src = ["".join(rng.choices(words, k=rng.randint(0, 12))) for _ in range(400)]
    tgt = ["".join(rng.choices(words, k=rng.randint(0, 12))) for _ in range(400)]
    cleaned, report = clean(ParallelSplit("train", src, tgt, "memory"), 2, 6, 2.5)

    kept, dropped = [], {}
    for source, target in zip(src, tgt):
        shorter, longer = sorted((len(source.split()), len(target.split())))
        reason = (
            "empty" if shorter == 0
            else "shorter than 2 words" if shorter < 2
            else "longer than 6 words" if longer > 6
            else "length ratio above 2.5" if longer / shorter > 2.5
            else None
        )  # fmt: skip
        if reason is None:
            kept.append((source.strip(), target.strip()))
        else:
            dropped[reason] = dropped.get(reason, 0) + 1
    assert list(zip(cleaned.src, cleaned.tgt)) == kept and report.kept == len(kept)
    assert report.dropped == dropped and len(dropped) == 4
    assert report.words == (
        sum(len(s.split()) for s, _ in kept),
        sum(len(t.split()) for _, t in kept),
    )
