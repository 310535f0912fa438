"""Attention heatmaps and every TensorBoard call: the only module importing matplotlib/tensorboard.

Inputs are plain arrays and token strings, so training, search and offline analysis draw the same
pictures. Shapes: T target steps, S source pieces, D context size, h attention heads.

Figures are built on `matplotlib.figure.Figure` and rendered with `FigureCanvasAgg` directly, never
through pyplot: no global backend is chosen, nothing is registered with a figure manager (so
nothing leaks between calls) and no display is needed. SentencePiece's word marker "▁" is drawn
as-is (the default DejaVu Sans font has the glyph), so labels are exactly the pieces `align.py`
merges; only "$" is escaped, because matplotlib would otherwise read "$...$" as mathtext.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from torch.utils.tensorboard import SummaryWriter

CELL_INCHES = 0.25  # one matrix cell; 60 tokens -> a ~15 inch axis at 100 dpi
MAX_INCHES = 20.0  # keeps TensorBoard images under ~2000 px a side
DPI = 100
SAVE_FORMATS = (".png", ".svg", ".pdf")


def _to_numpy(x: object, dtype: type | None = np.float64) -> np.ndarray:
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
    attn = _to_numpy(attn)
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
    head_attn = _to_numpy(head_attn)
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
    context = _to_numpy(context)
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


def attention_entropy(attn: np.ndarray) -> np.ndarray:
    """Entropy in nats of each attention row, -sum p log p with 0 log 0 = 0.

    Low entropy means sharp, alignment-like attention; log(S) means uniform. Zeros (padding) are
    skipped, so padded rows give the entropy of their real part.

    Args:
        attn: (..., S) attention distributions over the last axis.

    Returns:
        (...) entropies, never NaN for rows containing zeros.
    """
    p = _to_numpy(attn)
    log_p = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * log_p).sum(axis=-1)


def save_arrays(directory: Path, step: int, name: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write `directory/{name}_step{step:07d}.npz` atomically, for analysis outside TensorBoard.

    The archive goes to a temporary file in the same directory and is moved into place with
    `os.replace`, so a reader (or a crash) never sees a half-written file.

    Returns:
        The path written; `np.load(path)[key]` gives back each array.
    """
    reserved = {"file", "allow_pickle"} & set(arrays)
    if reserved:
        raise ValueError(f"array names {sorted(reserved)} clash with np.savez_compressed")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}_step{step:07d}.npz"
    payload = {key: _to_numpy(value, dtype=None) for key, value in arrays.items()}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _markdown_cell(text: str) -> str:
    """Escape a table cell: pipes would split columns, newlines would end the row."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


class TrainingLog:
    """Every TensorBoard write of a run, behind a `SummaryWriter` on one log directory.

    Tags: `{prefix}/{name}` scalars, `alignment/{name}` and `alignment_heads/{name}` images,
    `context/{name}` images, `attention/entropy` and `context/values` histograms, `samples` text.
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def scalars(self, values: Mapping[str, float], step: int, prefix: str = "") -> None:
        """Log each value under `prefix/key` (e.g. "train/loss"), or bare `key` without prefix."""
        head = f"{prefix.rstrip('/')}/" if prefix else ""
        for key, value in values.items():
            self._writer.add_scalar(f"{head}{key}", float(value), step)

    def attention(
        self,
        name: str,
        attn: np.ndarray,
        src_labels: Sequence[str],
        tgt_labels: Sequence[str],
        step: int,
        head_attn: np.ndarray | None = None,
    ) -> None:
        """Log the (T,S) alignment heatmap, and the (h,T,S) per-head panels when given."""
        fig = alignment_figure(attn, src_labels, tgt_labels)
        self._writer.add_image(f"alignment/{name}", figure_to_image(fig), step, dataformats="HWC")
        if head_attn is not None:
            fig = multihead_figure(head_attn, src_labels, tgt_labels)
            image = figure_to_image(fig)
            self._writer.add_image(f"alignment_heads/{name}", image, step, dataformats="HWC")

    def context(self, name: str, context: np.ndarray, tgt_labels: Sequence[str], step: int) -> None:
        """Log the (T,D) context heatmap with its per-step norms as image `context/{name}`."""
        image = figure_to_image(context_figure(context, tgt_labels))
        self._writer.add_image(f"context/{name}", image, step, dataformats="HWC")

    def histograms(
        self, attn_rows: np.ndarray | Sequence[np.ndarray], context_values: np.ndarray, step: int
    ) -> None:
        """Histogram attention sharpness and context magnitudes over many sentences.

        Args:
            attn_rows: attention distributions, (N,S) or a list of (T_i,S_i) matrices of different
                sizes; entropies are computed here (zeros from padding are ignored).
            context_values: context vectors of any shape; all values are pooled.
            step: training step.
        """
        rows = [attn_rows] if isinstance(attn_rows, np.ndarray) else list(attn_rows)
        entropies = [attention_entropy(r).ravel() for r in rows]
        entropy = np.concatenate(entropies) if entropies else np.zeros(0)
        values = _to_numpy(context_values).ravel()
        if entropy.size:
            self._writer.add_histogram("attention/entropy", entropy, step)
        if values.size:
            self._writer.add_histogram("context/values", values, step)

    def samples(self, rows: Sequence[tuple[str, str, str]], step: int) -> None:
        """Log (source, reference, hypothesis) triples as one markdown table, text tag `samples`."""
        lines = ["| source | reference | hypothesis |", "| --- | --- | --- |"]
        lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
        self._writer.add_text("samples", "\n".join(lines), step)

    def hparams(
        self, hparams: Mapping[str, float | int | str | bool], metrics: Mapping[str, float]
    ) -> None:
        """Log a run's hyperparameters and final metrics for TensorBoard's HParams tab.

        `run_name="."` makes torch write them into this run's directory (as a second event file)
        instead of a timestamped subfolder. torch also logs each metric as a scalar, so give
        metrics their own names (e.g. "hparam/bleu"), distinct from `scalars` tags.
        """
        self._writer.add_hparams(
            dict(hparams), {k: float(v) for k, v in metrics.items()}, run_name="."
        )

    def flush(self) -> None:
        """Push pending events to disk, e.g. before a validation that might crash."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; safe to call twice."""
        self._writer.close()
