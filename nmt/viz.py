"""Attention heatmaps: the figures that TensorBoard, nmt-translate and offline analysis share.

With ``run_log.py`` (which sends them to TensorBoard), the only modules importing matplotlib or
tensorboard. Inputs are plain arrays and token strings. Shapes: T target steps, S source pieces,
D context size, h attention heads.

Figures are built on `matplotlib.figure.Figure` and rendered with `FigureCanvasAgg` directly, never
through pyplot: no global backend is chosen, nothing is registered with a figure manager (so
nothing leaks between calls) and no display is needed. SentencePiece's word marker "▁" is drawn
as-is (the default DejaVu Sans font has the glyph), so labels are exactly the pieces `align.py`
merges; only "$" is escaped, because matplotlib would otherwise read "$...$" as mathtext.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

CELL_INCHES = 0.25  # one matrix cell; 60 tokens -> a ~15 inch axis at 100 dpi
MAX_INCHES = 20.0  # keeps TensorBoard images under ~2000 px a side
DPI = 100
SAVE_FORMATS = (".png", ".svg", ".pdf")


def to_numpy(x: object, dtype: type | None = np.float64) -> np.ndarray:
    """Accept numpy arrays, lists, or torch tensors (detached and moved to CPU without importing
    model code), so callers need not remember `.detach().cpu()`; `dtype=None` keeps the dtype."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()  # type: ignore[union-attr]
    return np.asarray(x, dtype=dtype)


def _labels(labels: Sequence[str]) -> list[str]:
    """Escape "$" so a piece such as "$5" is text, not the start of mathtext."""
    return [str(label).replace("$", r"\$") for label in labels]


def _fontsize(n: int) -> float:
    """Tick label size for an axis with n tokens: 10 pt for short sentences, 7 pt from ~40 on,
    which still fits a CELL_INCHES (18 pt) cell."""
    return float(np.clip(13.0 - n / 7.0, 7.0, 10.0))


def _axis_inches(n: int) -> float:
    """Figure extent for n tokens, growing with the matrix so labels never overlap."""
    return float(np.clip(CELL_INCHES * n, 2.0, MAX_INCHES))


def _check_matrix(attn: np.ndarray, src_labels: Sequence[str], tgt_labels: Sequence[str]) -> None:
    """Fail early on mismatched shapes: a padded matrix must be cropped to the real tokens."""
    if attn.shape[-2:] != (len(tgt_labels), len(src_labels)):
        raise ValueError(
            f"attention shape {attn.shape} does not match "
            f"{len(tgt_labels)} target x {len(src_labels)} source labels"
        )


def _heatmap(
    ax: Axes,
    attn: np.ndarray,
    src_labels: Sequence[str],
    tgt_labels: Sequence[str] | None,
    title: str,
) -> AxesImage:
    """Draw one (T,S) matrix in [0,1] with source pieces on x and target pieces on y."""
    image = ax.imshow(
        attn, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest"
    )
    ax.set_xticks(
        range(len(src_labels)),
        _labels(src_labels),
        rotation=90,
        fontsize=_fontsize(len(src_labels)),
    )
    ax.set_yticks(range(attn.shape[0]))
    if tgt_labels is not None:
        ax.set_yticklabels(_labels(tgt_labels), fontsize=_fontsize(len(tgt_labels)))
    else:
        ax.tick_params(axis="y", labelleft=False)
    ax.set_xlabel("source")
    if title:
        ax.set_title(title)
    return image


def alignment_figure(
    attn: np.ndarray, src_labels: Sequence[str], tgt_labels: Sequence[str], title: str = ""
) -> Figure:
    """Heatmap of one sentence's attention: a row per generated step, a column per source piece.

    Args:
        attn: (T,S) attention weights, rows summing to 1, cropped to the real tokens.
        src_labels: S source pieces (x axis, rotated).
        tgt_labels: T target or generated pieces (y axis, one row per step).
        title: optional figure title.

    Returns:
        The figure: the heatmap axes plus a colour-bar axes, fixed to [0,1] so figures logged at
        different steps are comparable.
    """
    attn = to_numpy(attn)
    _check_matrix(attn, src_labels, tgt_labels)
    size = (_axis_inches(len(src_labels)) + 2.5, _axis_inches(len(tgt_labels)) + 1.5)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    image = _heatmap(ax, attn, src_labels, tgt_labels, title)
    ax.set_ylabel("target")
    fig.colorbar(image, ax=ax, label="attention", aspect=40)
    return fig


def multihead_figure(
    head_attn: np.ndarray, src_labels: Sequence[str], tgt_labels: Sequence[str], title: str = ""
) -> Figure:
    """One panel per head plus a final panel with the mean over heads (the alignment).

    Args:
        head_attn: (h,T,S) per-head attention weights.
        src_labels: S source pieces.
        tgt_labels: T target pieces; drawn on the first column only, rows are shared.
        title: optional figure title.

    Returns:
        The figure with h+1 heatmap panels (at most 4 per row) and one shared colour bar.
    """
    head_attn = to_numpy(head_attn)
    if head_attn.ndim != 3:
        raise ValueError(f"head_attn must be (h,T,S), got shape {head_attn.shape}")
    _check_matrix(head_attn, src_labels, tgt_labels)
    panels = [*head_attn, head_attn.mean(axis=0)]
    names = [f"head {i + 1}" for i in range(len(head_attn))] + ["mean"]
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    size = (
        ncols * (_axis_inches(len(src_labels)) + 1.0) + 2.5,
        nrows * (_axis_inches(len(tgt_labels)) + 1.5),
    )
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for k, ax in enumerate(axes):
        if k >= len(panels):
            ax.remove()
            continue
        first_col = k % ncols == 0
        image = _heatmap(ax, panels[k], src_labels, tgt_labels if first_col else None, names[k])
    fig.colorbar(image, ax=list(axes[: len(panels)]), label="attention", aspect=40)
    if title:
        fig.suptitle(title)
    return fig


def context_figure(context: np.ndarray, tgt_labels: Sequence[str], title: str = "") -> Figure:
    """Context vectors per step: a steps x dimensions heatmap and each step's L2 norm.

    Args:
        context: (T,D) attention context vectors, one row per target step.
        tgt_labels: T target pieces labelling the rows.
        title: optional figure title.

    Returns:
        The figure: heatmap (diverging colours centred at 0, so sign is visible), a norm bar panel
        sharing its rows (collapsing or exploding contexts stand out), and a colour bar.
    """
    context = to_numpy(context)
    if context.ndim != 2 or context.shape[0] != len(tgt_labels):
        raise ValueError(f"context shape {context.shape} does not match {len(tgt_labels)} labels")
    height = _axis_inches(len(tgt_labels)) + 1.5
    fig = Figure(figsize=(12.0, height), dpi=DPI, layout="constrained")
    heat_ax, norm_ax = fig.subplots(1, 2, sharey=True, width_ratios=[4, 1])
    limit = max(float(np.abs(context).max(initial=0.0)), 1e-12)
    image = heat_ax.imshow(
        context, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest"
    )
    heat_ax.set_yticks(
        range(len(tgt_labels)), _labels(tgt_labels), fontsize=_fontsize(len(tgt_labels))
    )
    heat_ax.set_xlabel("dimension")
    heat_ax.set_ylabel("target")
    norm_ax.barh(range(len(tgt_labels)), np.linalg.norm(context, axis=1), color="tab:gray")
    norm_ax.set_xlabel("L2 norm")
    fig.colorbar(image, ax=heat_ax, label="value")
    if title:
        fig.suptitle(title)
    return fig


def figure_to_image(fig: Figure) -> np.ndarray:
    """Render a figure to an (H,W,3) uint8 RGB array and release it.

    The figure is cleared afterwards (it was never registered with pyplot, so clearing is all
    "closing" means); call `save_figure` first if the same figure should also go to disk.
    """
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    fig.clear()
    return image


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write a figure as PNG, SVG or PDF, chosen by the file suffix; the figure stays usable."""
    path = Path(path)
    if path.suffix.lower() not in SAVE_FORMATS:
        raise ValueError(f"unsupported figure format {path.suffix!r}; use one of {SAVE_FORMATS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # a canvas of our own; savefig switches to the SVG/PDF one by format
    fig.savefig(path, format=path.suffix.lower()[1:], dpi=DPI)
    return path
