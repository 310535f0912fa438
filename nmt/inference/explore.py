"""What the attention explorer shows of a sentence: its beam search as a tree, the attention of the
model reading its own output (with the k best alternatives at every step) and, when there is a
reference, the attention of reading the reference, with gold links and AER.

One function, ``explore``, serves training's validation log, ``nmt-translate
attention_logdir=...`` and the TensorBoard plugin's live box, so all three show the same thing.
Records are plain dicts (numpy arrays for the matrices); ``nmt.tensorboard_plugin.records``
stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from nmt.config import EOS_ID, DecodeConfig
from nmt.data.batching import EncodedSplit, collate, epoch_batches
from nmt.data.tokenizer import Vocabularies
from nmt.inference.align import Link, attention_entropy, word_alignment, word_starts
from nmt.inference.beam_tree import BeamTree, beam_search_trees
from nmt.inference.decoding import ForcedAttention, force_decode
from nmt.metrics import alignment_error_rate
from nmt.model import Seq2Seq

TOP_K = 5

Gold = tuple[set[Link], set[Link]]  # sure and possible links of one sentence pair


@torch.no_grad()
def explore(
    model: Seq2Seq,
    vocabs: Vocabularies,
    sources: Sequence[str],
    decode: DecodeConfig,
    references: Sequence[str] | None = None,
    gold: Sequence[Gold | None] | None = None,
    indices: Sequence[int] | None = None,
    forced: Sequence[int] = (),
    max_tokens: int | None = None,
) -> list[dict]:
    """One explorer record per source sentence.

    Args:
        decode: the search whose output and tree are shown (nmt-translate's: the run's
            beam size and penalties); n_best is 1. Greedy (beam 1) draws a chain.
        references: the reference translations, for the teacher-forced "reference" view.
        gold: per sentence, its gold links (or None); needs ``references``.
        indices: the sentences' numbers in their split (default 0, 1, ...).
        forced: target ids every output must start with (the live box's "what if").
        max_tokens: source pieces kept per sentence (None: all).
    """
    cfg = replace(decode, n_best=1)
    src_ids = [ids[:max_tokens] for ids in vocabs.src.encode_batch(sources)]
    outputs, trees = _search(model, src_ids, cfg, forced)
    own = force_decode(
        model, vocabs, EncodedSplit("own", src_ids, outputs), range(len(src_ids)), top_k=TOP_K
    )
    read = [None] * len(src_ids)
    if references is not None:
        ref_ids = vocabs.tgt.encode_batch(references)
        pairs = EncodedSplit("ref", src_ids, ref_ids)
        read = force_decode(model, vocabs, pairs, range(len(ref_ids)))
    records = []
    for i, source in enumerate(sources):
        views = {"hypothesis": _view(own[i], None, vocabs, outputs[i] + [EOS_ID])}
        if read[i] is not None:
            views["reference"] = _view(read[i], gold[i] if gold else None, vocabs, None)
        shown = views.get("reference", views["hypothesis"])
        records.append(
            {
                "index": i if indices is None else int(indices[i]),
                "source": source,
                "reference": None if references is None else references[i],
                "hypothesis": vocabs.tgt.decode(outputs[i]),
                "src_len": len(src_ids[i]),
                "tgt_len": len(shown["tgt"]) - 1,
                "aer": shown["aer"],
                "entropy": shown["entropy"],
                "views": views,
                "beam": _tree_record(trees[i], vocabs, cfg.beam_size),
            }
        )
    return records


def _search(
    model: Seq2Seq, src_ids: list[list[int]], cfg: DecodeConfig, forced: Sequence[int]
) -> tuple[list[list[int]], list[BeamTree]]:
    """The best output (ids, no EOS) and the search tree of every sentence, in input order."""
    split = EncodedSplit("explore", src_ids, [[] for _ in src_ids])
    device = next(model.parameters()).device
    outputs: list[list[int]] = [[] for _ in src_ids]
    trees: list[BeamTree] = [BeamTree() for _ in src_ids]
    for batch_indices in epoch_batches(split, 10**9, 64, seed=None):
        batch = collate(split, batch_indices).to(device)
        found, batch_trees = beam_search_trees(model, batch.src, batch.src_lens, cfg, forced)
        for i, hypotheses, tree in zip(batch_indices, found, batch_trees, strict=True):
            outputs[i], trees[i] = hypotheses[0].tokens, tree
    return outputs, trees


def _view(
    forced: ForcedAttention, gold: Gold | None, vocabs: Vocabularies, ids: list[int] | None
) -> dict:
    """One grid: pieces, their words, weights, gold links and the sentence's AER."""
    src_pieces, tgt_pieces = forced.src_labels[:-1], forced.tgt_labels[:-1]
    aer = None
    if gold is not None and src_pieces and tgt_pieces:
        links = word_alignment(forced.attn, src_pieces, tgt_pieces)
        aer = alignment_error_rate([links], [gold[0]], [gold[1]]).aer
    top = None
    if forced.top_ids is not None:
        top = [
            [
                {"id": int(i), "piece": vocabs.tgt.pieces([i])[0], "prob": round(float(p), 4)}
                for i, p in zip(row_ids, row_probs, strict=True)
            ]
            for row_ids, row_probs in zip(forced.top_ids, forced.top_probs, strict=True)
        ]
    return {
        "src": forced.src_labels,
        "tgt": forced.tgt_labels,
        "src_words": word_starts(src_pieces) + [-1],
        "tgt_words": word_starts(tgt_pieces) + [-1],
        "attn": forced.attn,
        "heads": forced.head_attn,
        "gold": None
        if gold is None
        else {"sure": sorted(map(list, gold[0])), "possible": sorted(map(list, gold[1]))},
        "aer": aer,
        "entropy": float(attention_entropy(forced.attn).mean()),
        "ids": ids,
        "topk": top,
    }


def _tree_record(tree: BeamTree, vocabs: Vocabularies, beam_size: int) -> dict:
    """The tree as nodes with pieces, and the path of the output (final rank 0)."""
    pieces = vocabs.tgt.pieces(tree.tokens)
    nodes = [
        {
            "id": node,
            "parent": parent,
            "depth": depth,
            "piece": "<s>" if parent < 0 else pieces[node],
            "score": round(score, 4),
            "final": tree.finals.get(node),
        }
        for node, (parent, depth, score) in enumerate(
            zip(tree.parents, tree.depths, tree.scores, strict=True)
        )
    ]
    best = [node for node, rank in tree.finals.items() if rank == 0]
    return {"beam_size": beam_size, "nodes": nodes, "best": tree.path(best[0]) if best else []}
