"""TrainingLog writes TensorBoard events that read back; arrays and entropies are right."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_viz import SRC, TGT, random_attn

from nmt.inference.align import attention_entropy
from nmt.training import run_log


def test_attention_entropy() -> None:
    n = 7
    assert attention_entropy(np.full(n, 1.0 / n)) == pytest.approx(math.log(n))
    assert attention_entropy(np.eye(4)).tolist() == [0.0] * 4
    padded = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = attention_entropy(padded)
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out, [math.log(2), 0.0])
    assert attention_entropy(random_attn((2, 3, 5))).shape == (2, 3)


def test_save_arrays_atomic(tmp_path: Path) -> None:
    arrays = {"attn": random_attn((3, 4)), "ids": np.arange(5)}
    path = run_log.save_arrays(tmp_path / "arrays", 42, "val0", arrays)
    assert path == tmp_path / "arrays" / "val0_step0000042.npz"
    with np.load(path) as loaded:
        assert set(loaded.files) == set(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(loaded[key], value)
            assert loaded[key].dtype == value.dtype
    assert os.listdir(path.parent) == [path.name]


def test_training_log_end_to_end(tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    attn = random_attn((len(TGT), len(SRC)))
    context = np.random.default_rng(2).normal(size=(len(TGT), 8))
    with run_log.TrainingLog(log_dir) as log:
        for step, loss in ((10, 2.5), (20, 1.25)):
            log.scalars({"loss": loss, "ppl": math.exp(loss)}, step, prefix="train")
            log.attention(
                "val0", attn, SRC, TGT, step, head_attn=random_attn((2, len(TGT), len(SRC)))
            )
        log.scalars({"bleu": 12.5}, 20, prefix="valid")
        log.context("val0", context, TGT, 20)
        log.histograms([attn, random_attn((2, 3))], context, 20)
        log.samples([("a | b", "ref", "hyp\nline")], 20)
        log.flush()
        log.hparams({"lr": 1e-3, "cell": "gru", "bidir": True, "layers": 2}, ["valid/bleu"])

    acc = EventAccumulator(
        str(log_dir), size_guidance={"images": 0, "scalars": 0, "histograms": 0, "tensors": 0}
    )
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/ppl", "valid/bleu"} <= set(tags["scalars"])
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(10, 2.5), (20, 1.25)]
    assert [e.step for e in acc.Images("alignment/val0")] == [10, 20]
    assert [e.step for e in acc.Images("alignment_heads/val0")] == [10, 20]
    assert [e.step for e in acc.Images("context/val0")] == [20]
    assert {"attention/entropy", "context/values"} <= set(tags["histograms"])
    assert acc.Histograms("context/values")[0].histogram_value.num == context.size
    assert "samples/text_summary" in tags["tensors"]
    text = acc.Tensors("samples/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "a \\| b" in text and "hyp line" in text

    # the HParams tab reads the run's own valid/bleu; no hparam/* copies in the Scalars tab
    assert not [tag for tag in tags["scalars"] if tag.startswith("hparam")]
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1
    experiment = acc.SummaryMetadata("_hparams_/experiment").plugin_data.content
    assert b"valid/bleu" in experiment
