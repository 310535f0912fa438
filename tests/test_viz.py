"""Figures render headless, with the right labels, colour bars and panels."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from nmt import viz

SRC = ["▁the", "▁cat", "▁sle", "eps", "$5", "</s>"]
TGT = ["▁die", "▁Katze", "▁schläft", "</s>"]


def random_attn(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Rows that are proper distributions over the last axis."""
    x = np.random.default_rng(seed).random(shape)
    return x / x.sum(axis=-1, keepdims=True)


def heatmap_axes(fig) -> list:
    """Panels drawn with imshow (colour bars are not AxesImages)."""
    return [ax for ax in fig.axes if ax.images]


def assert_rgb(image: np.ndarray) -> None:
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] > 0 and image.shape[1] > 0 and image.std() > 0


def test_alignment_figure_labels_colourbar_and_render() -> None:
    fig = viz.alignment_figure(random_attn((len(TGT), len(SRC))), SRC, TGT, title="demo")
    assert len(fig.axes) == 2  # heatmap + colour bar
    (ax,) = heatmap_axes(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == [s.replace("$", r"\$") for s in SRC]
    assert [t.get_text() for t in ax.get_yticklabels()] == TGT
    assert ax.images[0].get_clim() == (0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a missing "▁" glyph or a mathtext parse error
        assert_rgb(viz.figure_to_image(fig))


def test_alignment_figure_rejects_mismatched_labels() -> None:
    with pytest.raises(ValueError, match="does not match"):
        viz.alignment_figure(random_attn((3, 5)), SRC, TGT)


def test_multihead_figure_has_one_panel_per_head_plus_mean() -> None:
    heads = random_attn((3, len(TGT), len(SRC)))
    fig = viz.multihead_figure(heads, SRC, TGT, title="heads")
    panels = heatmap_axes(fig)
    assert len(panels) == 4 and len(fig.axes) == 5  # 3 heads + mean, one shared colour bar
    assert [ax.get_title() for ax in panels] == ["head 1", "head 2", "head 3", "mean"]
    np.testing.assert_allclose(panels[-1].images[0].get_array(), heads.mean(axis=0))
    assert_rgb(viz.figure_to_image(fig))


def test_context_figure_heatmap_and_norm_panel() -> None:
    context = np.random.default_rng(1).normal(size=(len(TGT), 16))
    fig = viz.context_figure(context, TGT, title="ctx")
    (heat,) = heatmap_axes(fig)
    low, high = heat.images[0].get_clim()
    assert high > 0 and low == -high  # centred at 0
    bars = [ax for ax in fig.axes if ax.patches]
    heights = [p.get_width() for p in bars[0].patches]
    np.testing.assert_allclose(heights, np.linalg.norm(context, axis=1))
    assert_rgb(viz.figure_to_image(fig))


def test_long_sentences_render(tmp_path: Path) -> None:
    labels = [f"▁w{i}" for i in range(60)]
    fig = viz.alignment_figure(random_attn((60, 60)), labels, labels)
    assert viz.save_figure(fig, tmp_path / "a.svg").read_text().startswith("<?xml")
    assert viz.save_figure(fig, tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert max(viz.figure_to_image(fig).shape[:2]) <= viz.MAX_INCHES * viz.DPI + 300
    with pytest.raises(ValueError, match="unsupported"):
        viz.save_figure(fig, tmp_path / "a.bmp")


def test_import_is_headless_and_sets_no_backend() -> None:
    # matplotlib.get_backend() itself imports pyplot to resolve the default, so check pyplot first.
    code = (
        "import sys, matplotlib, numpy as np, nmt.viz;"
        "fig = nmt.viz.alignment_figure(np.eye(2), ['a', 'b'], ['c', 'd']);"
        "assert nmt.viz.figure_to_image(fig).shape[2] == 3;"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported';"
        "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
