"""`make bench`'s bookkeeping: the peer it compares with, the BLEU floor, the learning curve."""

from __future__ import annotations

import json

from bench import M30K_SRC_LEN, M30K_TGT_LEN, PEER_VOCAB, macs_per_target_token
from bench_decode import first_reaching
from bench_peer import peer_model, ratio_rows

from nmt.config import ModelConfig


def test_peer_shape_costs_the_documented_multiply_adds():
    peer = ModelConfig(emb_dim=256, enc_hidden=256, dec_hidden=512)
    macs = macs_per_target_token(peer, PEER_VOCAB, M30K_SRC_LEN / M30K_TGT_LEN, M30K_SRC_LEN)
    assert 7.9e6 < macs < 8.0e6  # BENCHMARKS.md: "about 7.9 M"


def test_time_to_bleu_is_the_first_checkpoint_at_or_above_it():
    curve = [{"minutes": 1.0, "bleu": 20.0}, {"minutes": 2.0, "bleu": 31.5}]
    curve.append({"minutes": 3.0, "bleu": 30.0})  # a dip after reaching it changes nothing
    assert first_reaching(curve, 31.5) == 2.0
    assert first_reaching(curve, 25.0) == 2.0
    assert first_reaching(curve, 10.0) == 1.0
    assert first_reaching(curve, 32.0) is None


def test_peer_model_names_what_is_missing(tmp_path):
    result, checkpoint, why = peer_model(tmp_path)
    assert result is None and checkpoint is None and "onmt.sh" in why
    (tmp_path / "peer_result.json").write_text(json.dumps({"budget_s": 240, "bleu_beam5": 9.1}))
    result, _, why = peer_model(tmp_path)
    assert result is None and "240 s run" in why
    (tmp_path / "peer_result.json").write_text(json.dumps({"budget_s": 900, "bleu_beam5": 31.0}))
    result, checkpoint, why = peer_model(tmp_path)
    assert result["bleu_beam5"] == 31.0 and checkpoint is None and "no OpenNMT-py model" in why
    run = tmp_path / "onmt_run_900"
    run.mkdir()
    for step in (900, 10000, 2000):  # the last by step number, not by name
        (run / f"model_step_{step}.pt").write_bytes(b"")
    (tmp_path / "onmt/bin").mkdir(parents=True)
    (tmp_path / "onmt/bin/onmt_translate").write_text("")
    _, checkpoint, why = peer_model(tmp_path)
    assert checkpoint == run / "model_step_10000.pt" and why == ""


def test_no_speed_ratio_for_a_model_under_the_bleu_floor():
    results = {
        "peer_greedy_sents_per_s": 200.0,
        "peer_greedy_bleu": 30.0,
        "peer_greedy_command_s": 9.0,
        "decode_fp32_greedy_sents_per_s": 400.0,
        "decode_fp32_greedy_bleu": 35.0,
        "decode_int8_greedy_sents_per_s": 600.0,
        "decode_int8_greedy_bleu": 12.0,
        "command_fp32_greedy_s": 3.0,
    }
    rows = {row[0]: row for row in ratio_rows(results, ["fp32", "int8"], floor=30.0)}
    assert rows["fp32 greedy, sents/s"][-1] == "2.00x"
    assert rows["int8 greedy, sents/s"][-1] == "BLEU < 30"
    assert rows["whole command, fp32 greedy, s"][-1] == "1/3.00"
    assert not any("beam5" in name for name in rows)  # nothing measured, nothing shown
