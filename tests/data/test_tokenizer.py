from __future__ import annotations

from dataclasses import replace

import pytest

from nmt.config import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from nmt.data.corpus import load_split
from nmt.data.tokenizer import Tokenizer, build_vocabularies


@pytest.fixture(scope="module")
def train_split(tmp_path_factory):
    from nmt.config import DataConfig

    cfg = DataConfig(
        generated_sizes=[600, 50, 50],
        vocab_size=400,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    return cfg, load_split(cfg, "train")


def test_special_ids_are_fixed(train_split):
    cfg, train = train_split
    vocabs, _, _ = build_vocabularies(train, cfg)
    processor = vocabs.src.processor
    assert (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()) == (
        PAD_ID,
        UNK_ID,
        BOS_ID,
        EOS_ID,
    )


@pytest.mark.parametrize("spm_type", ["unigram", "bpe"])
def test_round_trip_restores_the_original_text(train_split, spm_type):
    cfg, train = train_split
    vocabs, _, _ = build_vocabularies(train, replace(cfg, spm_type=spm_type))
    for sentence in train.src[:50]:
        assert vocabs.src.decode(vocabs.src.encode(sentence)) == sentence
    for sentence in train.tgt[:50]:
        assert vocabs.tgt.decode(vocabs.tgt.encode(sentence)) == sentence


def test_decode_drops_special_ids(train_split):
    cfg, train = train_split
    vocabs, _, _ = build_vocabularies(train, cfg)
    ids = vocabs.tgt.encode(train.tgt[0])
    assert vocabs.tgt.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == train.tgt[0]


def test_pieces_spell_the_sentence(train_split):
    """Independent of ``decode``: the pieces, with U+2581 as a space, are the sentence."""
    cfg, train = train_split
    vocabs, _, _ = build_vocabularies(train, cfg)
    for sentence in train.src[:50] + train.tgt[:50]:
        ids = vocabs.src.encode(sentence)
        assert UNK_ID not in ids
        assert "".join(vocabs.src.pieces(ids)).replace("\u2581", " ").strip() == sentence


def test_second_build_trains_nothing_and_settings_change_the_key(train_split, monkeypatch):
    from nmt.data import tokenizer

    cfg, train = train_split
    cfg = replace(cfg, vocab_size=350)  # a key no other test of this module has trained
    trained = []
    real_train = tokenizer.train_sentencepiece
    monkeypatch.setattr(
        tokenizer, "train_sentencepiece", lambda *a: trained.append(1) or real_train(*a)
    )
    first, directory, _ = build_vocabularies(train, cfg)
    assert len(trained) == 1
    model_file = directory / "joint.model"
    written = model_file.stat().st_mtime_ns
    second, again, cached = build_vocabularies(train, cfg)
    assert len(trained) == 1 and cached and again == directory
    assert model_file.stat().st_mtime_ns == written
    assert second.src.model_proto == first.src.model_proto
    _, other, cached_other = build_vocabularies(train, replace(cfg, vocab_size=300))
    assert len(trained) == 2 and other != directory and not cached_other


def test_separate_vocabularies_are_trained_per_language(train_split):
    cfg, train = train_split
    vocabs, directory, _ = build_vocabularies(train, replace(cfg, joint_vocab=False))
    assert not vocabs.joint
    assert (directory / "en.model").is_file() and (directory / "de.model").is_file()
    english = {w for line in train.src for w in line.split()}
    german_only = [w for line in train.tgt for w in line.split() if w not in english]
    word = max(set(german_only), key=german_only.count)  # frequent: a whole piece in German

    def vocabulary(side):
        return {side.processor.id_to_piece(i) for i in range(len(side))}

    assert "\u2581" + word in vocabulary(vocabs.tgt)
    assert "\u2581" + word not in vocabulary(vocabs.src)
    assert vocabs.tgt.decode(vocabs.tgt.encode(word)) == word


def test_foreign_sentencepiece_model_is_rejected(tmp_path):
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["a b c d e f"] * 20),
        model_writer=model,
        vocab_size=10,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    with pytest.raises(ValueError, match="special ids"):
        Tokenizer(model.getvalue())


def test_an_empty_cached_model_is_trained_again(train_split):
    cfg, train = train_split
    cfg = replace(cfg, vocab_size=320)
    _, directory, _ = build_vocabularies(train, cfg)
    (directory / "joint.model").write_bytes(b"")  # what a crash before fsync used to leave
    vocabs, _, cached = build_vocabularies(train, cfg)
    assert not cached and (directory / "joint.model").stat().st_size > 0
    assert vocabs.src.decode(vocabs.src.encode(train.src[0])) == train.src[0]
