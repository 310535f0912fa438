"""What a training run leaves for people to read: TensorBoard events, arrays, log lines.

``TrainingLog`` is every TensorBoard call (figures come from ``viz``); ``RunLog`` turns training
numbers and ``ValidationResult``s into those calls. Only rank 0 writes; other ranks get a RunLog
with ``enabled=False`` whose methods do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from nmt.files import atomic_write
from nmt.inference.align import attention_entropy
from nmt.tensorboard_plugin import records
from nmt.training.validate import ValidationResult
from nmt.viz import alignment_figure, context_figure, figure_to_image, multihead_figure, to_numpy

if TYPE_CHECKING:
    from nmt.config import Config
    from nmt.training.progress import Progress

log = logging.getLogger("nmt")


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
    payload = {key: to_numpy(value, dtype=None) for key, value in arrays.items()}
    with atomic_write(target) as handle:
        np.savez_compressed(handle, **payload)
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
        values = to_numpy(context_values).ravel()
        if entropy.size:
            self._writer.add_histogram("attention/entropy", entropy, step)
        if values.size:
            self._writer.add_histogram("context/values", values, step)

    def explorer(self, tag: str, explored: Sequence[dict], step: int) -> None:
        """Log explorer records (``nmt.inference.explore``) for the Attention tab, under ``tag``."""
        if explored:
            self._writer.file_writer.add_summary(records.summary(tag, explored), step)

    def samples(self, rows: Sequence[tuple[str, str, str]], step: int) -> None:
        """Log (source, reference, hypothesis) triples as one markdown table, text tag `samples`."""
        lines = ["| source | reference | hypothesis |", "| --- | --- | --- |"]
        lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
        self._writer.add_text("samples", "\n".join(lines), step)

    def hparams(
        self, hparams: Mapping[str, float | int | str | bool], metrics: Sequence[str]
    ) -> None:
        """Log a run's hyperparameters for TensorBoard's HParams tab, into this run's event file.

        ``metrics`` name scalar tags the run already logs (e.g. "valid/bleu"): the HParams tab
        reads their last values from the run, so no second copy of them clutters the Scalars
        tab (torch's ``add_hparams`` would write each metric again, in a second event file).
        """
        experiment, start, end = hparams_summaries(dict(hparams), {k: 0.0 for k in metrics})
        for summary_proto in (experiment, start, end):
            self._writer.file_writer.add_summary(summary_proto)

    def flush(self) -> None:
        """Push pending events to disk, e.g. before a validation that might crash."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; safe to call twice."""
        self._writer.close()


class RunLog:
    """TensorBoard events under ``{run_dir}/tensorboard``, attention arrays under ``attention``."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.dir = Path(run_dir)
        self.writer = TrainingLog(self.dir / "tensorboard") if enabled else None

    def train_scalars(
        self, step: int, loss: float, lr: float, grad_norm: float, tokens_per_s: float
    ) -> None:
        if self.writer is None:
            return
        self.writer.scalars(
            {
                "loss": loss,
                "ppl": float(np.exp(min(loss, 50.0))),
                "lr": lr,
                "grad_norm": grad_norm,
                "tgt_tokens_per_s": tokens_per_s,
            },
            step,
            prefix="train",
        )

    def validation(
        self, step: int, result: ValidationResult, improved: bool, progress: Progress
    ) -> None:
        """One log line, the validation scalars, heatmaps, context vectors, samples and arrays."""
        if self.writer is None:
            return
        log.info(
            f"step {step:,} | valid loss {result.loss:.3f} ppl {result.ppl:.2f} | "
            f"BLEU {result.bleu:.2f} chrF {result.chrf:.2f}"
            + ("" if result.aer is None else f" AER {100 * result.aer:.1f} %")
            + f" | {result.seconds:.1f} s"
            + (
                " | new best"
                if improved
                else f" | best {progress.best_value:.2f} @ {progress.best_step:,}"
            )
        )
        scalars = {"loss": result.loss, "ppl": result.ppl, "bleu": result.bleu, "chrf": result.chrf}
        scalars["attn_entropy"] = result.entropy
        if result.aer is not None:
            scalars["aer"] = result.aer
        self.writer.scalars(scalars, step, prefix="valid")
        self.writer.explorer("valid", result.explored, step)
        arrays: dict[str, np.ndarray] = {}
        for index, plot in enumerate(result.plots):
            name = f"valid_{index}"
            self.writer.attention(
                name, plot.attn, plot.src_labels, plot.tgt_labels, step, head_attn=plot.head_attn
            )
            self.writer.context(name, plot.context, plot.tgt_labels, step)
            arrays.update(
                {
                    f"{name}_attn": plot.attn,
                    f"{name}_context": plot.context,
                    f"{name}_src": np.array(plot.src_labels),
                    f"{name}_tgt": np.array(plot.tgt_labels),
                }
            )
            if plot.head_attn is not None:
                arrays[f"{name}_head_attn"] = plot.head_attn
        self.writer.histograms(result.attn_rows, result.context_values, step)
        self.writer.samples(result.samples, step)
        if arrays:
            save_arrays(self.dir / "attention", step, "valid", arrays)
        self.writer.flush()

    def finish(self, cfg: Config, last: ValidationResult | None) -> None:
        """Hyperparameters with the final metrics, so a sweep's runs compare side by side."""
        if self.writer is None or last is None:
            return
        hparams = {
            f"{group}.{key}": value
            for group in ("model", "train", "data")
            for key, value in asdict(getattr(cfg, group)).items()
            if isinstance(value, (int, float, str, bool))
        }
        metrics = ["valid/bleu", "valid/chrf", "valid/ppl"]
        self.writer.hparams(hparams, metrics + ["valid/aer"] * (last.aer is not None))
        log.info(f"TensorBoard: tensorboard --logdir {self.dir / 'tensorboard'}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
