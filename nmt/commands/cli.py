"""Hydra entry points: the only module that sees a DictConfig.

Each console script composes its own primary config (configs/<command>.yaml) over the shared
groups, converts it once to its typed schema (which runs the checks: an option the command does
not have is an error naming it) and hands plain dataclasses to the library. Errors in
the user's input end the process with one clear line and a non-zero status, not a traceback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import nmt
from nmt.config import Config
from nmt.schemas import (
    AverageConfig,
    EvaluateConfig,
    PrepareConfig,
    TranslateConfig,
    register_configs,
)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # nmt/


def config_dir(package: Path = PACKAGE_DIR) -> str:
    """The config tree: the copy a wheel ships as nmt/configs, else the checkout's configs/
    (a source tree or an editable install)."""
    shipped = package / "configs"
    return str(shipped if (shipped / "train.yaml").is_file() else package.parent / "configs")


CONFIG_DIR = config_dir()


def _entry_point(name: str, task: Callable[[Any], None]) -> Callable[[], None]:
    """Wrap ``task`` as a Hydra app over ``configs/<name>.yaml``, the command's own config."""

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=name)
    def main(cfg: DictConfig) -> None:
        try:
            config = OmegaConf.to_object(cfg)
        except (ValueError, OmegaConfBaseException) as error:
            sys.exit(f"error: invalid configuration: {error}")
        try:
            task(config)
        except (ValueError, FloatingPointError) as error:  # DataError, CheckpointError too
            sys.exit(f"error: {error}")
        except OSError as error:  # the commands name options where they can; never a traceback
            sys.exit(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "))

    def run() -> None:
        register_configs()
        main()

    return run


def _prepare(cfg: PrepareConfig) -> None:
    from nmt.data.prepare import prepare, statistics_table

    corpus = prepare(cfg.data, ["valid", *cfg.data.test_sets])
    print()
    print(statistics_table(corpus))


def _train(cfg: Config) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from tqdm.contrib.logging import logging_redirect_tqdm

    from nmt.training.train import train

    # train.max_time counts from process start (start-up and data loading included), except
    # for the later jobs of a multirun, which share the process: each counts from its own start
    hydra = HydraConfig.get()
    first_job = hydra.mode != RunMode.MULTIRUN or hydra.job.num == 0
    started_at = nmt.STARTED_AT if first_job else time.monotonic()
    with logging_redirect_tqdm():
        train(cfg, Path(hydra.runtime.output_dir), started_at)


def decode_options_given() -> set[str]:
    """The ``decode.*`` options on this command line: nmt-translate and nmt-evaluate take the
    others from the checkpoint (the search its training validated with)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides(HydraConfig.get().overrides.task)
    keys = (override.key_or_group for override in overrides)
    return {key.removeprefix("decode.") for key in keys if key.startswith("decode.")}


def _translate(cfg: TranslateConfig) -> None:
    from nmt.commands.translate import translate

    translate(cfg, decode_options_given())


def _evaluate(cfg: EvaluateConfig) -> None:
    from nmt.commands.evaluate import evaluate

    evaluate(cfg, decode_options_given())


def _average(cfg: AverageConfig) -> None:
    from nmt.checkpoint import CHECKPOINT_DIR, average_checkpoints, save_checkpoint

    if cfg.run is not None:
        directory = Path(cfg.run) / CHECKPOINT_DIR
        steps = sorted(directory.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
        if not steps:
            raise ValueError(
                f"run={cfg.run}: no step_*.pt checkpoints in {directory} (train with "
                "train.keep_checkpoints=N to keep them)"
            )
        paths = steps[-cfg.last :]
        output = Path(cfg.output or directory / "average.pt")
    else:
        if not cfg.output:
            raise ValueError("checkpoints=[...] needs output=<file>")
        paths, output = list(cfg.checkpoints), Path(cfg.output)
    averaged = average_checkpoints(paths)
    save_checkpoint(averaged, output)
    print(f"averaged {len(paths)} checkpoints ({', '.join(Path(p).name for p in paths)})")
    print(f"written: {output}")


prepare = _entry_point("prepare", _prepare)
train = _entry_point("train", _train)
translate = _entry_point("translate", _translate)
evaluate = _entry_point("evaluate", _evaluate)
average = _entry_point("average", _average)
