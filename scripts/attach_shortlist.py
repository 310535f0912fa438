"""Give a checkpoint written before vocabulary shortlists the table of its training split.

``decode.shortlist`` reads the table from the checkpoint; ``nmt-train`` stores it in every
checkpoint it writes, older ones have none. This prepares the checkpoint's own training data
(its data settings, with ``--data-root`` when the corpus moved), builds the table (or reads it
from the data cache) and writes a copy of the checkpoint that holds it.

    python scripts/attach_shortlist.py runs/r1 runs/r1/checkpoints/with_shortlist.pt \\
        --data-root ../shared/data/multi30k/raw
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from nmt.checkpoint import load_checkpoint, save_checkpoint, vocabularies_from
from nmt.config import DataConfig
from nmt.data.prepare import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run directory or .pt file")
    parser.add_argument("out", help="the .pt file to write")
    parser.add_argument("--data-root", help="where the training corpus is now (data.root)")
    args = parser.parse_args()
    payload = load_checkpoint(args.checkpoint)
    data = DataConfig(**payload["config"]["data"])
    if args.data_root:
        data = replace(data, root=args.data_root)
    corpus = prepare(data, [], vocabs=vocabularies_from(payload))
    arrays = corpus.shortlist.to_arrays()
    payload["shortlist"] = {name: torch.from_numpy(array) for name, array in arrays.items()}
    payload.pop("path", None)  # added by load_checkpoint, not part of the file
    save_checkpoint(payload, args.out)
    print(f"wrote {args.out} (shortlist of {len(arrays['table']):,} source pieces)")


if __name__ == "__main__":
    main()
