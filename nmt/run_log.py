"""What a training run leaves for people to read: TensorBoard events, arrays, log lines.

Turns training numbers and ``ValidationResult``s into ``viz`` calls. Only rank 0 writes; other
ranks get a RunLog with ``enabled=False`` whose methods do nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nmt.validate import ValidationResult

if TYPE_CHECKING:
    from nmt.config import Config
    from nmt.train import Progress

log = logging.getLogger("nmt")


class RunLog:
    """TensorBoard events under ``{run_dir}/tensorboard``, attention arrays under ``attention``."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.dir = Path(run_dir)
        self.enabled = enabled
        self.writer = None
        if enabled:
            from nmt.viz import TrainingLog

            self.writer = TrainingLog(self.dir / "tensorboard")

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
            f"BLEU {result.bleu:.2f} chrF {result.chrf:.2f} | {result.seconds:.1f} s"
            + (
                " | new best"
                if improved
                else f" | best {progress.best_value:.2f} @ {progress.best_step:,}"
            )
        )
        from nmt.viz import save_arrays

        self.writer.scalars(
            {"loss": result.loss, "ppl": result.ppl, "bleu": result.bleu, "chrf": result.chrf},
            step,
            prefix="valid",
        )
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

    def finish(self, cfg: Config, progress: Progress, last: ValidationResult | None) -> None:
        """Hyperparameters with the final metrics, so a sweep's runs compare side by side."""
        if self.writer is None or last is None:
            return
        hparams = {
            f"{group}.{key}": value
            for group in ("model", "train", "data")
            for key, value in asdict(getattr(cfg, group)).items()
            if isinstance(value, (int, float, str, bool))
        }
        self.writer.hparams(
            hparams,
            {
                "hparam/bleu": last.bleu,
                "hparam/chrf": last.chrf,
                "hparam/ppl": last.ppl,
                "hparam/best": progress.best_value or 0.0,
            },
        )
        log.info(f"TensorBoard: tensorboard --logdir {self.dir / 'tensorboard'}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
