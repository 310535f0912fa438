"""`make demo`: train the demo preset on the built-in corpus, evaluate it, point at TensorBoard.

Extra arguments are Hydra overrides passed to nmt-train, e.g. `make demo ARGS=train.max_steps=500`.
Everything lands in one run directory under outputs/demo/. The console scripts are run from this
interpreter's environment (.venv/bin when the Makefile made one), so nothing needs to be on PATH.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

BIN = Path(sys.executable).parent  # the environment's console scripts, whether on PATH or not


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run([str(BIN / command[0]), *command[1:]], check=True)


def summary(run_dir: Path) -> str:
    """One line per test set from the report nmt-evaluate wrote."""
    report = json.loads((run_dir / "evaluation.json").read_text())
    lines = []
    for test_set in report["test_sets"]:
        scores = {score["name"]: score["value"] for score in test_set["scores"]}
        aer = test_set["alignment"]
        aer_text = f", AER {100 * aer['aer']:.2f} %" if aer else ""
        lines.append(
            f"{test_set['name']} ({test_set['sentences']} sentences, beam "
            f"{report['decode']['beam_size']}): BLEU {scores['BLEU']:.2f}, "
            f"chrF {scores['chrF']:.2f}, TER {scores['TER']:.2f}{aer_text}"
        )
    return "\n".join(lines)


def main() -> None:
    run_dir = Path("outputs") / "demo" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    started = time.monotonic()
    run(["nmt-train", "experiment=demo", f"hydra.run.dir={run_dir}", *sys.argv[1:]])
    trained = time.monotonic()
    run(["nmt-evaluate", f"checkpoint={run_dir}"])
    evaluated = time.monotonic() - trained
    print(f"\n{summary(run_dir)}")
    print(f"trained in {trained - started:.0f} s, evaluated in {evaluated:.0f} s")
    print(f"run directory: {run_dir}  (checkpoints/, tensorboard/, attention/, evaluation.json)")
    print(f"explore the attention (Attention tab): make tensorboard LOGDIR={run_dir}")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)
