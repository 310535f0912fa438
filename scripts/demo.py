"""`make demo`: train the default config on the built-in corpus, evaluate it, point at TensorBoard.

Extra arguments are Hydra overrides passed to nmt-train, e.g. `python scripts/demo.py
train.max_steps=500`. Everything lands in one run directory under outputs/demo/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

BIN = Path(sys.executable).parent  # the environment's console scripts, whether on PATH or not


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run([str(BIN / command[0]), *command[1:]], check=True)


def main() -> None:
    run_dir = Path("outputs") / "demo" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    started = time.monotonic()
    run(["nmt-train", f"hydra.run.dir={run_dir}", *sys.argv[1:]])
    trained = time.monotonic()
    run(["nmt-evaluate", f"checkpoint={run_dir}"])
    evaluated = time.monotonic() - trained
    print(f"\ntrained in {trained - started:.0f} s, evaluated in {evaluated:.0f} s")
    print(f"run directory: {run_dir}  (checkpoints/, tensorboard/, attention/, evaluation.json)")
    print(f"see the attention learn: tensorboard --logdir {run_dir / 'tensorboard'}")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)
