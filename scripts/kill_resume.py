"""Kill a training run with SIGKILL at random moments, resume it each time, compare the end.

    python scripts/kill_resume.py                       # 20 kills (about 10 minutes on 2 cores)
    python scripts/kill_resume.py --kills 3 --steps 30  # the quick version the test suite runs

The run is the tiny generated-corpus model, trained with ``train.resume=auto`` in one run
directory, the way a requeued cluster job repeats its command. After every kill: every checkpoint
on disk must load, and no temporary file may be left once the next start has cleaned up. At the
end the weights must equal, bit for bit, those of the same run trained without interruption.
Exits non-zero, naming what failed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nmt.checkpoint import CHECKPOINT_DIR, CheckpointError, load_checkpoint  # noqa: E402
from nmt.files import TEMP_SUFFIX  # noqa: E402


def train_command(run_dir: Path, cache: Path, steps: int, val_every: int) -> list[str]:
    code = "import sys; from nmt.commands.cli import train; sys.argv[0] = 'nmt-train'; train()"
    return [
        sys.executable,
        "-c",
        code,
        f"hydra.run.dir={run_dir}",
        "train.resume=auto",
        f"train.max_steps={steps}",
        f"train.val_every={val_every}",
        "train.val_sentences=10",
        "train.plot_sentences=1",
        "train.progress=false",
        "train.threads=1",
        "data.generated_sizes=[300,30,30]",
        "data.vocab_size=200",
        f"data.cache_dir={cache}",
        "model.emb_dim=16",
        "model.enc_hidden=16",
        "model.dec_hidden=32",
    ]


def check_checkpoints(run_dir: Path) -> list[str]:
    """Problems with the checkpoints on disk: unreadable files."""
    problems = []
    for path in sorted((run_dir / CHECKPOINT_DIR).glob("*.pt")):
        try:
            load_checkpoint(path)
        except CheckpointError as error:
            problems.append(str(error))
    return problems


def main() -> int:
    args = parse_args()
    root = Path(tempfile.mkdtemp(prefix="kill_resume_"))
    try:
        return kill_and_resume(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--val-every", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the runs' temporary directory")
    return parser.parse_args()


def kill_and_resume(args: argparse.Namespace, root: Path) -> int:
    rng = random.Random(args.seed)
    cache = root / "cache"
    straight = root / "straight"
    command = train_command(straight, cache, args.steps, args.val_every)
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, cwd=root)
    full_run_s = time.monotonic() - started
    print(f"uninterrupted run: {full_run_s:.1f} s")

    run_dir, kills, problems = root / "killed", 0, []
    command = train_command(run_dir, cache, args.steps, args.val_every)
    log_path = root / "killed.log"
    while True:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT)
            try:
                process.wait(timeout=rng.uniform(1.0, 10.0) if kills < args.kills else None)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                kills += 1
                step = "-"
                if (run_dir / CHECKPOINT_DIR / "last.pt").is_file():
                    step = load_checkpoint(run_dir, prefer="last")["progress"]["step"]
                print(f"kill {kills:>2}: last.pt at step {step}", flush=True)
                problems += check_checkpoints(run_dir)
                continue
        if process.returncode != 0:
            print(log_path.read_text(errors="replace")[-3000:])
            return 1
        break
    problems += check_checkpoints(run_dir)
    leftovers = sorted(p.name for p in run_dir.rglob(f"*{TEMP_SUFFIX}"))
    if leftovers:
        problems.append(f"temporary files left: {leftovers}")
    final = load_checkpoint(run_dir, prefer="last")
    reference = load_checkpoint(straight, prefer="last")
    if final["progress"]["step"] != args.steps:
        problems.append(f"the killed run ended at step {final['progress']['step']}")
    differing = [
        name
        for name, tensor in reference["model"].items()
        if not torch.equal(tensor, final["model"][name])
    ]
    if differing:
        problems.append(f"weights differ from the uninterrupted run's: {differing}")
    print(f"{kills} kills, {len(problems)} problems")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
