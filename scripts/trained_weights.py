"""Write the trained weights of a ``train.ema`` run as a checkpoint of their own.

Such a run's checkpoints hold the moving average as their weights (what every command decodes);
its ``last.pt`` also keeps the trained weights. This writes a weights-only copy of ``last.pt``
with the trained weights in their place, to score the two against each other:

    python scripts/trained_weights.py runs/r1 runs/r1/checkpoints/trained.pt
    nmt-evaluate checkpoint=runs/r1/checkpoints/last.pt baseline=runs/r1/checkpoints/trained.pt
"""

from __future__ import annotations

import argparse

from nmt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

RESUME_STATE = ("optimizer", "schedule", "rng", "rng_per_rank", "scaler", "path")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run directory or its last.pt")
    parser.add_argument("out", help="the .pt file to write")
    args = parser.parse_args()
    payload = load_checkpoint(args.checkpoint, prefer="last")
    if "train_model" not in payload:
        raise CheckpointError(
            f"{payload['path']} holds no trained weights apart from its average: only the "
            "last.pt of a run trained with train.ema does"
        )
    payload["model"] = payload.pop("train_model")
    kept = {key: value for key, value in payload.items() if key not in RESUME_STATE}
    save_checkpoint(kept, args.out)


if __name__ == "__main__":
    main()
