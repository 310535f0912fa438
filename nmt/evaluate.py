"""nmt-evaluate: translate test sets, score them with sacreBLEU, and score attention as alignments.

Scores are computed on detokenized output against the untouched references. AER uses the
attention of the model force-decoding the *reference* (teacher forcing), because gold links
relate source words to reference words, not to whatever the model happened to generate.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from nmt.align import parse_pharaoh, read_pharaoh, word_alignment
from nmt.batching import EncodedSplit, collate, epoch_batches
from nmt.checkpoint import CHECKPOINT_DIR
from nmt.config import Config, DataConfig
from nmt.corpus import DataError, ParallelSplit, load_split, read_lines
from nmt.metrics import (
    AlignmentScores,
    Score,
    alignment_error_rate,
    corpus_scores,
    moses_lowercase_bleu,
)
from nmt.translate import LoadedModel, load_model, search_lines


@dataclass
class TestSetReport:
    name: str
    sentences: int
    scores: list[Score]
    seconds: float
    alignment: AlignmentScores | None = None


def test_sets(cfg: Config, data: DataConfig) -> list[ParallelSplit]:
    """The test sets to score: ``input``/``reference`` files, or ``data.test_sets``."""
    if cfg.input or cfg.reference:
        if not (cfg.input and cfg.reference):
            raise DataError("nmt-evaluate needs both input=<source file> and reference=<file>")
        sources, references = read_lines(Path(cfg.input)), read_lines(Path(cfg.reference))
        if len(sources) != len(references):
            raise DataError(
                f"input={cfg.input} has {len(sources)} lines but reference="
                f"{cfg.reference} has {len(references)}"
            )
        return [ParallelSplit(Path(cfg.input).name, sources, references, cfg.input)]
    return [load_split(data, name) for name in data.test_sets]


@torch.no_grad()
def forced_alignments(
    loaded: LoadedModel, split: ParallelSplit, method: str, threshold: float, max_tokens: int
) -> list[set[tuple[int, int]]]:
    """Word links from the attention of teacher-forcing each reference translation."""
    vocabs, model = loaded.vocabs, loaded.model
    encoded = EncodedSplit(
        split.name,
        [s[:max_tokens] for s in vocabs.src.encode_batch(split.src)],
        [t[:max_tokens] for t in vocabs.tgt.encode_batch(split.tgt)],
    )
    links: list[set[tuple[int, int]]] = [set() for _ in split.src]
    for indices in epoch_batches(encoded, 8192, 64, seed=None):
        batch = collate(encoded, indices)
        attn = model(batch.src, batch.src_lens, batch.tgt_in).attn.float()  # (B,T,S)
        for b, i in enumerate(indices):
            s, t = len(encoded.src[i]) + 1, len(encoded.tgt[i]) + 1
            links[i] = word_alignment(
                attn[b, :t, :s].numpy(),
                vocabs.src.pieces(encoded.src[i]),
                vocabs.tgt.pieces(encoded.tgt[i]),
                method,
                threshold,
            )
    return links


def score_alignments(
    cfg: Config, loaded: LoadedModel, split: ParallelSplit, max_tokens: int
) -> AlignmentScores | None:
    """AER against ``alignments=<file>`` or the split's own gold links, when there are any."""
    if cfg.alignments:
        gold = read_pharaoh(cfg.alignments, one_based=cfg.alignments_one_based)
    elif split.alignments is not None:
        gold = [
            parse_pharaoh(line, where=f"{split.origin}:{n}")
            for n, line in enumerate(split.alignments, start=1)
        ]
    else:
        return None
    if len(gold) != len(split):
        raise DataError(
            f"{cfg.alignments or split.origin}: {len(gold)} alignment lines for "
            f"{len(split)} sentence pairs"
        )
    predicted = forced_alignments(loaded, split, cfg.align_method, cfg.align_threshold, max_tokens)
    return alignment_error_rate(predicted, [s for s, _ in gold], [p for _, p in gold])


def evaluate_split(cfg: Config, loaded: LoadedModel, split: ParallelSplit) -> TestSetReport:
    started = time.perf_counter()
    nbest = search_lines(loaded, split.src, replace(cfg.decode, n_best=1), cfg.data.max_tokens)
    hypotheses = [loaded.vocabs.tgt.decode(h[0].tokens) if h else "" for h in nbest]
    seconds = time.perf_counter() - started
    alignment = score_alignments(cfg, loaded, split, cfg.data.max_tokens)
    scores = corpus_scores(hypotheses, split.tgt)
    if cfg.tok_bleu:
        scores.append(moses_lowercase_bleu(hypotheses, split.tgt, loaded.data.tgt))
    return TestSetReport(split.name, len(split), scores, seconds, alignment)


def evaluate(cfg: Config, data: DataConfig | None = None) -> list[TestSetReport]:
    """The nmt-evaluate command: print a table, write a JSON report.

    ``data`` is where the test sets come from: the command line's data config when the user
    gave one, else the checkpoint's own (so a model is evaluated on its corpus by default).
    """
    loaded = load_model(cfg.checkpoint, cfg.decode.device)
    data = data or loaded.data
    if (data.src, data.tgt) != (loaded.data.src, loaded.data.tgt):
        raise DataError(
            f"the checkpoint translates {loaded.data.src}->{loaded.data.tgt}, but "
            f"data.src={data.src} data.tgt={data.tgt}"
        )
    reports = [evaluate_split(cfg, loaded, split) for split in test_sets(cfg, data)]
    print(report_table(reports, cfg))
    path = Path(cfg.report) if cfg.report else _run_dir_of(loaded.path) / "evaluation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "checkpoint": loaded.path,
                "decode": asdict(cfg.decode),
                "test_sets": [asdict(r) for r in reports],
            },
            indent=2,
        )
    )
    print(f"report: {path}")
    return reports


def _run_dir_of(checkpoint: str) -> Path:
    """``run/checkpoints/best.pt`` -> ``run``; a loose file -> its directory."""
    directory = Path(checkpoint).parent
    return directory.parent if directory.name == CHECKPOINT_DIR else directory


def report_table(reports: list[TestSetReport], cfg: Config) -> str:
    search = (
        "greedy"
        if cfg.decode.beam_size == 1
        else (f"beam {cfg.decode.beam_size}, alpha {cfg.decode.alpha:g}, beta {cfg.decode.beta:g}")
    )
    tok = cfg.tok_bleu
    lines = [
        f"{'test set':<22}{'sents':>7}{'BLEU':>8}{'chrF':>8}{'TER':>8}"
        + (f"{'lc-tok':>8}" if tok else "")
        + f"{'AER':>8}{'sent/s':>9}   ({search})"
    ]
    for r in reports:
        value = {s.name: s.value for s in r.scores}
        aer = f"{100 * r.alignment.aer:>8.2f}" if r.alignment else f"{'-':>8}"
        lines.append(
            f"{r.name:<22}{r.sentences:>7}{value['BLEU']:>8.2f}{value['chrF']:>8.2f}"
            f"{value['TER']:>8.2f}"
            + (f"{value['BLEU-lc-tok']:>8.2f}" if tok else "")
            + f"{aer}{r.sentences / max(r.seconds, 1e-9):>9.1f}"
        )
    signatures = {s.name: s.signature for r in reports for s in r.scores}
    lines += [f"{name} signature: {signature}" for name, signature in signatures.items()]
    if any(r.alignment for r in reports):
        lines.append(
            "AER in %, from the attention of force-decoding the reference "
            f"({cfg.align_method}); precision/recall in the JSON report"
        )
    return "\n".join(lines)
