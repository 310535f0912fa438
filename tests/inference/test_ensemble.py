"""Ensembles: one member equals the model, two members average their probabilities per step."""

from __future__ import annotations

import pytest
import torch
from conftest import SRC_LENS, random_src, tiny_model

from nmt.checkpoint import CheckpointError
from nmt.config import BOS_ID, DecodeConfig
from nmt.inference.beam import beam_search
from nmt.inference.decoding import load_translator
from nmt.inference.ensemble import Ensemble
from nmt.inference.search import greedy


def test_an_ensemble_of_one_model_finds_what_the_model_finds():
    model = tiny_model("luong")
    alone, together = model, Ensemble([model]).eval()
    src, src_lens = random_src(SRC_LENS)
    cfg = DecodeConfig(beam_size=4, alpha=1.0, n_best=2, max_len_ratio=1.5)
    with torch.no_grad():
        for a, b in zip(greedy(alone, src, src_lens, 1.5), greedy(together, src, src_lens, 1.5)):
            assert a.tokens == b.tokens
            assert a.log_prob == pytest.approx(b.log_prob, abs=1e-5)
        for a, b in zip(
            beam_search(alone, src, src_lens, cfg), beam_search(together, src, src_lens, cfg)
        ):
            assert [h.tokens for h in a] == [h.tokens for h in b]
            torch.testing.assert_close(a[0].attn, b[0].attn)


def test_two_models_average_their_probabilities_and_attention():
    first, second = tiny_model("luong", seed=0), tiny_model("bahdanau", seed=1)
    ensemble = Ensemble([first, second]).eval()
    src, src_lens = random_src([5, 3])
    with torch.no_grad():
        state = ensemble.decoder.init_state(ensemble.encode(src, src_lens))
        y = torch.full((2,), BOS_ID)
        out = ensemble.decoder.step(y, state)
        by_hand_probs, by_hand_attn = 0, 0
        for model in (first, second):
            step = model.decoder.step(y, model.decoder.init_state(model.encode(src, src_lens)))
            by_hand_probs = by_hand_probs + step.logits.softmax(-1) / 2
            by_hand_attn = by_hand_attn + step.attn / 2
    torch.testing.assert_close(out.logits.exp(), by_hand_probs)
    torch.testing.assert_close(out.attn, by_hand_attn)
    assert torch.all(out.attn[1, 3:] == 0)  # padding still gets nothing
    (hyp, _) = greedy(ensemble, src, src_lens, 1.5)
    assert hyp.tokens[0] == int(by_hand_probs[0].argmax())


def test_checkpoints_of_different_vocabularies_cannot_be_ensembled(trained_run, tmp_path):
    from conftest import tiny_config

    from nmt.training.train import train

    train(tiny_config(tmp_path, max_steps=1, val_every=1), tmp_path / "small")  # vocabulary 200
    best = str(trained_run / "checkpoints" / "best.pt")
    with pytest.raises(CheckpointError, match=r"cannot ensemble .*best.pt and .*last.pt: their"):
        load_translator([best, str(tmp_path / "small" / "checkpoints" / "last.pt")])


def test_evaluating_a_model_twice_as_an_ensemble_scores_as_the_model(trained_run, tmp_path):
    import json

    from conftest import run_command

    best = trained_run / "checkpoints" / "best.pt"
    reports = []
    for checkpoint, name in ((f"{best}", "one"), (f"[{best},{best}]", "two")):
        report = tmp_path / f"{name}.json"
        args = (f"checkpoint={checkpoint}", "decode.beam_size=2", f"report={report}")
        result = run_command("evaluate", *args)
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(report.read_text()))
    one, two = ([s["value"] for s in r["test_sets"][0]["scores"]] for r in reports)
    assert two == pytest.approx(one)
    assert [c["path"] for c in reports[1]["provenance"]["checkpoints"]] == [str(best)] * 2
    aer = [r["test_sets"][0]["alignment"]["aer"] for r in reports]
    assert aer[1] == pytest.approx(aer[0])  # the mean of two equal attentions
