"""Scheduled sampling in its parallel form (Duckworth et al., 2019).

Training on gold prefixes only leaves the decoder unused to its own mistakes; feeding back its
own predictions step by step would serialize training. Instead one extra teacher-forced pass
predicts every position at once, and some gold inputs are swapped for those predictions.
"""

from __future__ import annotations

import torch

from nmt.config import PAD_ID
from nmt.data.batching import Batch
from nmt.model import Seq2Seq


@torch.no_grad()
def sampled_inputs(model: Seq2Seq, batch: Batch, prob: float) -> torch.Tensor:
    """``batch.tgt_in`` with each gold token but BOS replaced, with probability ``prob``, by the
    model's greedy prediction for that position from one teacher-forced pass."""
    predicted = model(batch.src, batch.src_lens, batch.tgt_in).logits.argmax(-1)  # (B,T)
    swap = torch.rand(batch.tgt_in.shape, device=batch.tgt_in.device) < prob
    swap[:, 0] = False
    swap &= batch.tgt_in != PAD_ID
    shifted = torch.cat([batch.tgt_in[:, :1], predicted[:, :-1]], dim=1)
    return torch.where(swap, shifted, batch.tgt_in)
