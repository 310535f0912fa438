"""Hydra entry points: the only module that sees a DictConfig.

Each console script composes the same config tree (configs/), converts it once to the typed
``Config`` (which runs the schema's checks) and hands plain dataclasses to the library. Errors in
the user's input end the process with one clear line and a non-zero status, not a traceback.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import nmt
from nmt.config import Config, register_configs

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # nmt/


def config_dir(package: Path = PACKAGE_DIR) -> str:
    """The config tree: the copy a wheel ships as nmt/configs, else the checkout's configs/
    (a source tree or an editable install)."""
    shipped = package / "configs"
    return str(shipped if (shipped / "config.yaml").is_file() else package.parent / "configs")


CONFIG_DIR = config_dir()
# Scripts that produce no run directory: no outputs/ folder, no log file, stdout left to the task.
QUIET_RUN = [
    "hydra.output_subdir=null",
    "hydra.run.dir=.",
    "hydra/job_logging=none",
    "hydra/hydra_logging=none",
]


def _entry_point(task: Callable[[Config], None], quiet: bool) -> Callable[[], None]:
    """Wrap ``task`` as a Hydra app over the shared config tree."""

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
    def main(cfg: DictConfig) -> None:
        try:
            config = OmegaConf.to_object(cfg)
        except (ValueError, OmegaConfBaseException) as error:
            sys.exit(f"error: invalid configuration: {error}")
        try:
            task(config)
        except (ValueError, FileNotFoundError, FloatingPointError) as error:  # DataError, too
            sys.exit(f"error: {error}")

    def run() -> None:
        register_configs()
        if quiet and not any(arg.startswith(("--help", "-h", "--hydra-help")) for arg in sys.argv):
            user_keys = {arg.split("=", 1)[0] for arg in sys.argv[1:]}
            sys.argv += [o for o in QUIET_RUN if o.split("=", 1)[0] not in user_keys]
        main()

    return run


def _prepare(cfg: Config) -> None:
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


def _translate(cfg: Config) -> None:
    from nmt.commands.translate import translate

    translate(cfg)


def _evaluate(cfg: Config) -> None:
    from hydra.core.hydra_config import HydraConfig

    from nmt.commands.evaluate import evaluate

    # Test sets come from the checkpoint's own data settings unless the user named data ones.
    overrides = HydraConfig.get().overrides.task
    data_given = any(o.lstrip("+~").startswith("data") for o in overrides)
    evaluate(cfg, data=cfg.data if data_given else None)


prepare = _entry_point(_prepare, quiet=True)
train = _entry_point(_train, quiet=False)
translate = _entry_point(_translate, quiet=True)
evaluate = _entry_point(_evaluate, quiet=True)
