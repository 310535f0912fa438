"""The binarized training split: round trip, cache keys, interrupted writes, sharding, streaming."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import SRC_LINES, TGT_LINES, write_text

from nmt.data.batching import epoch_batches, shard
from nmt.data.binarized import MappedSplit, SplitWriter, flatten
from nmt.data.corpus import DataError, clean, load_split
from nmt.data.prepare import prepare
from nmt.data.streaming import train_chunks


def quiet(cfg, splits=()):
    messages: list[str] = []
    return prepare(cfg, list(splits), log=messages.append), "\n".join(messages)


def test_the_mapped_split_holds_the_cleaned_corpus_encoded(generated_cfg):
    corpus, _ = quiet(generated_cfg)
    train = corpus.encoded["train"]
    assert isinstance(train, MappedSplit) and train.src.ids.dtype == np.uint16
    pairs, _ = clean(
        load_split(generated_cfg, "train"),
        generated_cfg.min_len,
        generated_cfg.max_len,
        generated_cfg.max_len_ratio,
    )
    vocabs = corpus.vocabs
    assert list(train.src) == vocabs.src.encode_batch(pairs.src)  # every pair, in order
    assert list(train.tgt) == vocabs.tgt.encode_batch(pairs.tgt)
    assert [vocabs.tgt.decode(train.tgt[i]) for i in range(5)] == pairs.tgt[:5]  # back to text
    src_lens, tgt_lens = train.lengths()
    assert src_lens.tolist() == [len(s) for s in train.src]
    assert train.manifest["pairs"] == len(pairs) and train.manifest["dropped"] == {}


def test_the_cache_is_reused_and_rebuilt_when_anything_it_holds_changes(generated_cfg):
    first, said = quiet(generated_cfg)
    assert "binarized cache built" in said
    again, said = quiet(generated_cfg)
    assert "binarized cache reused" in said and "vocabulary: reused" in said
    home = Path(first.encoded["train"].src.ids.filename).parent
    assert Path(again.encoded["train"].src.ids.filename).parent == home
    for change in ({"max_len": 8}, {"max_tokens": 12}, {"vocab_size": 300}):
        other, said = quiet(replace(generated_cfg, **change))
        assert "binarized cache built" in said, change
        assert Path(other.encoded["train"].src.ids.filename).parent != home


def test_a_changed_corpus_file_is_binarized_again(files_root, tmp_path):
    from nmt.config import DataConfig

    cfg = DataConfig(
        source="files", root=str(files_root), src="de", tgt="en", cache_dir=str(tmp_path / "c")
    )
    before, _ = quiet(cfg)
    write_text(files_root / "train.en.gz", SRC_LINES + ["one more line"])
    write_text(files_root / "train.de.gz", TGT_LINES + ["noch eine Zeile"])
    after, said = quiet(cfg)
    assert (
        "binarized cache built" in said
        and len(after.encoded["train"]) == len(before.encoded["train"]) + 1
    )


def test_a_cache_cut_short_or_left_half_written_is_rebuilt(generated_cfg):
    corpus, _ = quiet(generated_cfg)
    home = Path(corpus.encoded["train"].src.ids.filename).parent
    expected = list(corpus.encoded["train"].tgt)
    with open(home / "tgt.ids", "r+b") as handle:  # a disk that lost the file's tail
        handle.truncate(os.path.getsize(home / "tgt.ids") // 2)
    rebuilt, said = quiet(generated_cfg)
    assert "binarized cache built" in said and list(rebuilt.encoded["train"].tgt) == expected
    # a writer killed mid-way leaves only its temporary directory, which nobody reads
    killed = SplitWriter(home.parent / "other", "train", 1000)
    killed.add(flatten([[5, 6]], killed.dtype), flatten([[7]], killed.dtype))
    assert not (home.parent / "other").exists() and killed.temporary.exists()
    SplitWriter(home.parent / "other", "train", 1000).abandon()  # the next writer clears it
    assert not killed.temporary.exists()


@pytest.mark.parametrize(("world", "group"), [(2, 1), (2, 2), (3, 1)])
def test_every_pair_is_on_exactly_one_rank_each_epoch(generated_cfg, world, group):
    corpus, _ = quiet(generated_cfg)
    train = corpus.encoded["train"]
    batches = epoch_batches(train, 700, 16, seed=11)
    shares = [shard(batches, rank, world, group) for rank in range(world)]
    seen = sorted(i for share in shares for batch in share for i in batch)
    assert seen == list(range(len(train)))  # each pair once, none dropped
    assert len({len(share) for share in shares}) == 1 and len(shares[0]) % group == 0
    assert shard(batches, 0, 1) == batches  # one rank: the plan as it is


def test_a_corpus_of_one_sentence_batches_loses_only_its_tail():
    batches = [[0], [1], [2]]
    assert list(shard(batches, 0, 2)) + list(shard(batches, 1, 2)) == [[0], [1]]


def test_parallel_files_of_different_lengths_are_named_with_their_counts(files_root, tmp_path):
    from nmt.config import DataConfig

    write_text(files_root / "train.en.gz", ["a", "b"])
    cfg = DataConfig(
        source="files", root=str(files_root), src="de", tgt="en", cache_dir=str(tmp_path / "c")
    )
    lines = len(TGT_LINES)
    with pytest.raises(DataError, match=rf"train.de.gz has {lines} lines, .*train.en.gz has 2"):
        list(train_chunks(cfg))


@pytest.mark.parametrize("longer", ["de", "en"])
def test_a_longer_file_is_counted_to_its_end(tmp_path, longer):
    from nmt.config import DataConfig

    for lang in ("de", "en"):
        write_text(
            tmp_path / f"train.{lang}", [f"line {n}" for n in range(5 + 3 * (lang == longer))]
        )
    cfg = DataConfig(source="files", root=str(tmp_path), src="de", tgt="en")
    counts = {"de": 5 + 3 * (longer == "de"), "en": 5 + 3 * (longer == "en")}
    with pytest.raises(
        DataError, match=rf"train.de has {counts['de']} lines, .*train.en has {counts['en']}"
    ):
        list(train_chunks(cfg, size=2))


def test_a_truncated_gzip_training_file_is_named_before_any_work(files_root, tmp_path):
    import gzip

    from nmt.config import DataConfig
    from nmt.data.streaming import train_digest

    whole = gzip.compress("".join(f"line {n}\n" for n in range(5000)).encode())
    (files_root / "train.en.gz").write_bytes(whole[: len(whole) // 2])
    cfg = DataConfig(source="files", root=str(files_root), src="de", tgt="en")
    with pytest.raises(DataError, match=r"train\.en\.gz: cannot read it"):
        train_digest(cfg)


def test_chunks_stream_the_whole_split_in_order(generated_cfg):
    whole = load_split(generated_cfg, "train")
    chunks = list(train_chunks(generated_cfg, size=250))
    assert [len(c) for c in chunks[:-1]] == [250] * (len(chunks) - 1)
    assert [line for c in chunks for line in c.src] == whole.src
    assert [line for c in chunks for line in c.tgt] == whole.tgt


def test_the_vocabulary_sample_is_aligned_pairs_drawn_once_each(generated_cfg):
    from nmt.data.streaming import train_sample

    whole = load_split(generated_cfg, "train")
    index = {pair: i for i, pair in enumerate(zip(whole.src, whole.tgt))}
    sample = train_sample(generated_cfg, 100)
    drawn = [index[pair] for pair in zip(sample.src, sample.tgt)]  # KeyError: not a pair
    assert len(drawn) == 100 == len(set(drawn)) and drawn == sorted(drawn)
    assert drawn != list(range(100))  # not the first lines
    assert train_sample(generated_cfg, 100).src == sample.src  # seeded
    assert train_sample(generated_cfg, 10**6).src == whole.src  # a small split: all of it


def test_chunks_encoded_by_worker_processes_equal_one_pass_in_process(generated_cfg, monkeypatch):
    """A corpus of several chunks is encoded by spawned workers; the cache holds exactly what
    a one-chunk, in-process pass writes."""
    import nmt.data.prepare as prepare_module
    import nmt.data.streaming as streaming

    whole, _ = quiet(replace(generated_cfg, cache_dir=generated_cfg.cache_dir + "-whole"))
    chunks = streaming.train_chunks
    monkeypatch.setattr(prepare_module, "train_chunks", lambda cfg: chunks(cfg, size=97))
    pieces, said = quiet(replace(generated_cfg, max_tokens=30))
    assert "binarized cache built" in said
    limited = [
        i
        for i, (s, t) in enumerate(zip(whole.encoded["train"].src, whole.encoded["train"].tgt))
        if max(len(s), len(t)) <= 30
    ]
    assert list(pieces.encoded["train"].src) == [whole.encoded["train"].src[i] for i in limited]
    assert list(pieces.encoded["train"].tgt) == [whole.encoded["train"].tgt[i] for i in limited]
    assert pieces.cleaning["train"].dropped == {
        "longer than data.max_tokens=30 pieces": 600 - len(limited)
    }


def test_a_hub_dataset_streams_in_arrow_batches(tmp_path):
    import datasets

    from nmt.config import DataConfig
    from nmt.data.streaming import train_digest, train_sample

    rows = [{"translation": {"de": t, "en": s}} for s, t in zip(SRC_LINES * 30, TGT_LINES * 30)]
    saved = tmp_path / "saved"
    table = datasets.Dataset.from_list(rows)
    datasets.DatasetDict({"train": table, "validation": table}).save_to_disk(str(saved))
    cfg = DataConfig(
        source="hf", name=str(saved), src="en", tgt="de", cache_dir=str(tmp_path / "c")
    )
    chunks = list(train_chunks(cfg, size=40))
    assert [len(c) for c in chunks] == [40, 40, 40, 30]
    assert [s for c in chunks for s in c.src] == SRC_LINES * 30
    assert len(train_sample(cfg, 20)) == 20 and train_digest(cfg) == train_digest(cfg)
    corpus, said = quiet(cfg, ["valid"])
    pairs, _ = clean(load_split(cfg, "train"), cfg.min_len, cfg.max_len, cfg.max_len_ratio)
    assert list(corpus.encoded["train"].tgt) == corpus.vocabs.tgt.encode_batch(pairs.tgt)
    assert "binarized cache built" in said
