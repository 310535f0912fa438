"""prepare: load, clean, tokenize; what it reports."""

from __future__ import annotations

from dataclasses import replace

from nmt.data.prepare import prepare


def test_long_training_pairs_are_left_out_and_other_splits_kept_whole(generated_cfg):
    messages: list[str] = []
    full = prepare(generated_cfg, ["valid"], log=messages.append)
    assert not any("max_tokens" in m for m in messages)  # 250 pieces: nothing is long
    train, valid = full.encoded["train"], full.encoded["valid"]
    longest = [max(len(s), len(t)) for s, t in zip(train.src, train.tgt)]
    limit = sorted(longest)[len(longest) // 2]  # about half the pairs are longer
    short = [i for i, n in enumerate(longest) if n <= limit]
    long_valid = sum(max(len(s), len(t)) > limit for s, t in zip(valid.src, valid.tgt))
    messages.clear()
    cut = prepare(replace(generated_cfg, max_tokens=limit), ["valid"], log=messages.append)
    dropped = len(longest) - len(short)
    why = f"{dropped:,} longer than data.max_tokens={limit} pieces"
    assert 0 < dropped and why in "\n".join(messages)
    assert list(cut.encoded["train"].src) == [train.src[i] for i in short]  # left out, not cut
    assert list(cut.encoded["train"].tgt) == [train.tgt[i] for i in short]  # and still aligned
    assert cut.cleaning["train"].kept == len(short)
    assert cut.cleaning["train"].dropped[f"longer than data.max_tokens={limit} pieces"] == dropped
    assert cut.encoded["valid"].src == valid.src and cut.encoded["valid"].tgt == valid.tgt
    assert 0 < long_valid and f"valid: {long_valid:,} pairs longer than" in "\n".join(messages)


def test_an_impossible_cache_dir_is_named(generated_cfg, tmp_path):
    import pytest

    from nmt.data.corpus import DataError

    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=r"data.cache_dir=.*file/cache: cannot create it"):
        prepare(replace(generated_cfg, cache_dir=str(tmp_path / "file" / "cache")), [])
