"""What the attention explorer shows of a sentence: its beam search as a tree, the attention of the
model reading its own output (with the k best alternatives at every step) and, when there is a
reference, the attention of reading the reference, with gold links and AER.

``explore`` searches and force-decodes (``nmt-translate attention_logdir=...``, the TensorBoard
plugin's live box); validation hands ``assemble`` the attention it computed anyway. Both give the
same records: plain dicts (numpy arrays for the matrices) that ``nmt.tensorboard_plugin.records``
stores.
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
from nmt.inference.search import Hypothesis
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
    """One explorer record per source sentence, with its beam tree and top-k alternatives.

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
    every = range(len(src_ids))
    own_split = EncodedSplit("own", src_ids, outputs)
    own = force_decode(model, vocabs, own_split, every, top_k=TOP_K)
    read = None
    if references is not None:
        ref_split = EncodedSplit("ref", src_ids, vocabs.tgt.encode_batch(references))
        read = force_decode(model, vocabs, ref_split, every, top_k=TOP_K)
    tree_records = [_tree_record(tree, vocabs, cfg.beam_size) for tree in trees]
    return assemble(vocabs, sources, outputs, own, references, read, gold, indices, tree_records)


def assemble(
    vocabs: Vocabularies,
    sources: Sequence[str],
    outputs: Sequence[list[int]],
    own: Sequence[ForcedAttention],
    references: Sequence[str] | None = None,
    read: Sequence[ForcedAttention] | None = None,
    gold: Sequence[Gold | None] | None = None,
    indices: Sequence[int] | None = None,
    trees: Sequence[dict | None] | None = None,
) -> list[dict]:
    """Records from attention already computed: ``own`` (the model reading its ``outputs``,
    ids without EOS) and ``read`` (reading the ``references``). Validation calls this with what
    it computed anyway (greedy outputs, the loss pass' attention): no tree, no alternatives."""
    records = []
    for i, source in enumerate(sources):
        steps = own[i].attn.shape[0]  # len(outputs) + 1 unless the search stopped without EOS
        ids = outputs[i] + [EOS_ID] * (steps - len(outputs[i]))
        views = {"hypothesis": _view(own[i], None, vocabs, ids)}
        if read is not None:
            views["reference"] = _view(read[i], gold[i] if gold else None, vocabs, None)
        shown = views.get("reference", views["hypothesis"])
        records.append(
            {
                "index": i if indices is None else int(indices[i]),
                "source": source,
                "reference": None if references is None else references[i],
                "hypothesis": vocabs.tgt.decode(outputs[i]),
                "src_len": len(shown["src"]) - 1,
                "tgt_len": len(shown["tgt"]) - 1,
                "aer": shown["aer"],
                "entropy": shown["entropy"],
                "views": views,
                "beam": None if trees is None else trees[i],
            }
        )
    return records


def searched_attention(
    hypothesis: Hypothesis, src: list[int], vocabs: Vocabularies
) -> ForcedAttention:
    """The attention a search recorded while producing ``hypothesis`` (no alternatives)."""
    steps = hypothesis.attn.shape[0]
    labels = vocabs.tgt.pieces(hypothesis.tokens) + ["</s>"] * (steps - len(hypothesis.tokens))
    heads = hypothesis.head_attn
    return ForcedAttention(
        vocabs.src.pieces(src) + ["</s>"],
        labels,
        hypothesis.attn.float().numpy(),
        hypothesis.context.float().numpy(),
        None if heads is None else heads.permute(1, 0, 2).float().numpy(),
    )


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
    ends = forced.tgt_labels[-1:] == ["</s>"]  # not when a search stopped at its length limit
    src_pieces = forced.src_labels[:-1]
    tgt_pieces = forced.tgt_labels[:-1] if ends else forced.tgt_labels
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
        "tgt_words": word_starts(tgt_pieces) + [-1] * ends,
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
