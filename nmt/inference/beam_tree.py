"""Beam search as a tree people can look at: which hypotheses were kept at every step, their
parents and scores, and where the finished ones branched (the explorer's beam view).

Read off ``beam.py``'s step history after the search, so the search itself pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from nmt.config import DecodeConfig
from nmt.inference.beam import finalize, search_steps
from nmt.inference.search import Hypothesis
from nmt.model import Seq2Seq


@dataclass
class BeamTree:
    """One sentence's search as a tree, for people to look at: node 0 is BOS; every other node
    is a hypothesis kept in a slot or retired as finished at some step.

    Attributes:
        parents: the node each node extends (-1 for the root). depths: its output length.
        tokens: its last token. scores: its cumulative log-probability.
        finals: finished node -> rank by the ranking score (0: the output).
    """

    parents: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    finals: dict[int, int] = field(default_factory=dict)

    def add(self, parent: int, depth: int, token: int, score: float) -> int:
        self.parents.append(parent)
        self.depths.append(depth)
        self.tokens.append(token)
        self.scores.append(score)
        return len(self.parents) - 1

    def path(self, node: int) -> list[int]:
        """Node ids from the root to ``node``."""
        nodes = [node]
        while self.parents[nodes[-1]] >= 0:
            nodes.append(self.parents[nodes[-1]])
        return nodes[::-1]


@torch.inference_mode()
def beam_search_trees(
    model: Seq2Seq, src: Tensor, src_lens: Tensor, cfg: DecodeConfig, forced: Sequence[int] = ()
) -> tuple[list[list[Hypothesis]], list[BeamTree]]:
    """``beam_search``, plus each sentence's search tree (kept and finished hypotheses)."""
    finished, history = search_steps(model, src, src_lens, cfg, forced)
    trees = [_tree(b, finished[b], history, cfg.beam_size) for b in range(src.size(0))]
    return finalize(finished, history, src_lens, cfg.n_best), trees


def _tree(sentence: int, finished: list, history, k: int) -> BeamTree:
    """Sentence ``sentence``'s kept rows at every step and its finished hypotheses, as a tree."""
    tree, node_of = BeamTree(), {}  # (step, row) -> node
    for t in range(len(history.tokens)):
        where = (history.active[t] == sentence).nonzero()
        if not where.numel():
            break
        first = int(where[0, 0]) * k
        tokens = history.tokens[t][first : first + k].tolist()
        scores = history.scores[t][first : first + k].tolist()
        back = history.back[t][first : first + k].tolist()
        for slot, (token, score, parent) in enumerate(zip(tokens, scores, back, strict=True)):
            if score == float("-inf"):
                continue
            parent_node = node_of[(t - 1, parent)] if t > 0 else -1
            node_of[(t, first + slot)] = tree.add(parent_node, t, token, score)
    ranked = sorted(finished, key=lambda h: h.score, reverse=True)
    for rank, hyp in enumerate(ranked):
        node = tree.add(node_of[(hyp.step, hyp.row)], hyp.step + 1, hyp.last, hyp.log_prob)
        tree.finals[node] = rank
    return tree
