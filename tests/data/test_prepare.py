"""prepare: load, clean, tokenize; what it reports."""

from __future__ import annotations

from dataclasses import replace

from nmt.data.prepare import prepare


def test_sentences_cut_to_max_tokens_are_counted_and_reported(generated_cfg):
    messages: list[str] = []
    full = prepare(generated_cfg, ["valid"], log=messages.append)
    assert not any("cut to" in m for m in messages)  # 250 pieces: nothing is cut
    longest = [
        max(len(s), len(t)) for s, t in zip(full.encoded["train"].src, full.encoded["train"].tgt)
    ]
    limit = sorted(longest)[len(longest) // 2]  # about half the pairs are longer
    messages.clear()
    cut = prepare(replace(generated_cfg, max_tokens=limit), ["valid"], log=messages.append)
    expected = sum(
        max(len(s), len(t)) > limit
        for split in full.encoded.values()
        for s, t in zip(split.src, split.tgt)
    )
    assert 0 < expected and f"; {expected:,} cut to data.max_tokens={limit} pieces" in messages[-1]
    assert all(len(s) <= limit for s in cut.encoded["train"].src)
