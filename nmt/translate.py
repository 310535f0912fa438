"""nmt-translate: a checkpoint and sentences in, translations (and their attention) out.

Input order is kept although batches are sorted by length; empty lines give empty lines; a
terminal on stdin is served line by line, so the command doubles as an interactive translator.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import torch

from nmt.align import format_pharaoh, word_alignment
from nmt.batching import EncodedSplit, collate, epoch_batches
from nmt.beam import beam_search
from nmt.checkpoint import CheckpointError, load_checkpoint, vocabularies_from
from nmt.config import Config, DataConfig, DecodeConfig, ModelConfig
from nmt.corpus import DataError, read_lines
from nmt.device import Distributed, autocast, pick_device
from nmt.model import Seq2Seq, build_model
from nmt.search import Hypothesis, greedy
from nmt.tokenizer import Vocabularies

log = logging.getLogger("nmt")


@dataclass
class LoadedModel:
    """A model ready to translate, with the settings it was trained with."""

    model: Seq2Seq
    vocabs: Vocabularies
    data: DataConfig
    path: str


def load_model(location: str | None, device: str = "cpu") -> LoadedModel:
    """Rebuild the model of a checkpoint (file or run directory) in eval mode.

    ``device`` is ``decode.device``: auto (CUDA when present), cpu or cuda.
    """
    if location is None:
        raise CheckpointError("no checkpoint given: add checkpoint=<run directory or .pt file>")
    payload = load_checkpoint(location)
    try:
        model_cfg = ModelConfig(**payload["config"]["model"])
        data_cfg = DataConfig(**payload["config"]["data"])
        vocabs = vocabularies_from(payload)
        model = build_model(model_cfg, len(vocabs.src), len(vocabs.tgt))
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(
            f"{payload['path']}: model, configuration and vocabulary do not "
            f"match ({str(error).splitlines()[0]})"
        ) from None
    model = model.to(pick_device(device, Distributed(), "decode.device")).eval()
    return LoadedModel(model, vocabs, data_cfg, payload["path"])


def encode_sources(lines: Sequence[str], vocabs: Vocabularies, max_tokens: int) -> EncodedSplit:
    """Tokenize source lines, cutting those past ``max_tokens`` pieces with a warning."""
    ids = vocabs.src.encode_batch(lines)
    for number, pieces in enumerate(ids, start=1):
        if len(pieces) > max_tokens:
            log.warning(
                f"input line {number}: {len(pieces)} pieces, truncated to {max_tokens} "
                "(data.max_tokens)"
            )
    return EncodedSplit("input", [p[:max_tokens] for p in ids], [[] for _ in ids])


def search_split(
    model: Seq2Seq, split: EncodedSplit, cfg: DecodeConfig, device: torch.device
) -> list[list[Hypothesis]]:
    """The n-best hypotheses of every source sentence of ``split``, in the split's order.

    The one batch loop of validation, nmt-translate and nmt-evaluate: sentences are decoded in
    length-sorted batches of ``cfg.batch_size``, greedily when ``beam_size`` is 1, with
    bfloat16 matmuls when ``cfg.precision`` is bf16 (scores are still summed in float32).
    """
    results: list[list[Hypothesis]] = [[] for _ in range(len(split))]
    for indices in epoch_batches(split, 10**9, cfg.batch_size, seed=None):
        batch = collate(split, indices).to(device)
        with autocast(device, cfg.precision):
            if cfg.beam_size == 1:
                found = greedy(
                    model, batch.src, batch.src_lens, cfg.max_len_ratio, cfg.no_repeat_ngram
                )
                nbest = [[hypothesis] for hypothesis in found]
            else:
                nbest = beam_search(model, batch.src, batch.src_lens, cfg)
        for index, hypotheses in zip(indices, nbest):
            results[index] = hypotheses
    return results


@torch.no_grad()
def search_lines(
    loaded: LoadedModel, lines: Sequence[str], decode: DecodeConfig, max_tokens: int
) -> list[list[Hypothesis]]:
    """n-best hypotheses for every line, in input order; empty lines get no hypothesis."""
    split = encode_sources(lines, loaded.vocabs, max_tokens)
    real = [i for i, line in enumerate(lines) if line.strip()]
    subset = EncodedSplit("input", [split.src[i] for i in real], [[] for _ in real])
    device = next(loaded.model.parameters()).device
    results: list[list[Hypothesis]] = [[] for _ in lines]
    for index, hypotheses in zip(real, search_split(loaded.model, subset, decode, device)):
        results[index] = hypotheses
    return results


def _open(path: str | None, stack: ExitStack) -> IO[str] | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return stack.enter_context(open(path, "w", encoding="utf-8"))


def _read_input(path: str | None) -> Iterator[list[str]]:
    """Chunks of input lines: the whole file at once, or one line at a time from a terminal."""
    if path is not None and path != "-":
        if not Path(path).is_file():
            raise DataError(f"input={path} does not exist")
        yield read_lines(Path(path))
        return
    if sys.stdin.isatty():
        print("Type a sentence and press Enter (Ctrl-D to quit).", file=sys.stderr)
        for line in sys.stdin:
            yield [line.rstrip("\n")]
        return
    try:
        yield sys.stdin.read().splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"stdin: not valid UTF-8 ({error.reason})") from None


def translate(cfg: Config) -> None:
    """The nmt-translate command."""
    loaded = load_model(cfg.checkpoint, cfg.decode.device)
    offset = 0
    with ExitStack() as stack:
        out = _open(cfg.output or "-", stack)
        extras = {
            name: _open(getattr(cfg, name), stack)
            for name in ("write_alignments", "write_nbest", "write_jsonl")
        }
        for lines in _read_input(cfg.input):
            for number, hypotheses in enumerate(
                search_lines(loaded, lines, cfg.decode, cfg.data.max_tokens), start=offset
            ):
                _write(cfg, loaded, lines[number - offset], number, hypotheses, out, extras)
            offset += len(lines)
            out.flush()


def _write(
    cfg: Config,
    loaded: LoadedModel,
    source: str,
    number: int,
    hypotheses: list[Hypothesis],
    out: IO[str],
    extras: dict,
) -> None:
    """Write one input line's translation and whatever extra outputs were asked for."""
    vocabs = loaded.vocabs
    best = hypotheses[0] if hypotheses else None
    out.write((vocabs.tgt.decode(best.tokens) if best else "") + "\n")
    if extras["write_nbest"]:
        for hypothesis in hypotheses:
            text = vocabs.tgt.decode(hypothesis.tokens)
            extras["write_nbest"].write(f"{number} ||| {text} ||| {hypothesis.score:.4f}\n")
    if extras["write_alignments"] or extras["write_jsonl"] or cfg.write_heatmaps:
        _write_attention(cfg, loaded, source, number, best, extras)


def _write_attention(
    cfg: Config,
    loaded: LoadedModel,
    source: str,
    number: int,
    best: Hypothesis | None,
    extras: dict,
) -> None:
    """Word alignments, the JSONL record and the heatmap of the best hypothesis' attention."""
    vocabs = loaded.vocabs
    src_labels, tgt_labels, links = [], [], set()
    if best is not None:
        src_pieces = vocabs.src.pieces(vocabs.src.encode(source)[: cfg.data.max_tokens])
        tgt_pieces = vocabs.tgt.pieces(best.tokens)
        attn = best.attn.numpy()  # (T,S): T has an EOS row unless search hit the length limit
        links = word_alignment(attn, src_pieces, tgt_pieces, cfg.align_method, cfg.align_threshold)
        src_labels = src_pieces + ["</s>"]
        tgt_labels = tgt_pieces + ["</s>"] * (attn.shape[0] - len(tgt_pieces))
    if extras["write_alignments"]:
        extras["write_alignments"].write(format_pharaoh(links) + "\n")
    if extras["write_jsonl"]:
        record = {
            "index": number,
            "source": source,
            "translation": vocabs.tgt.decode(best.tokens) if best else "",
            "src_pieces": src_labels,
            "tgt_pieces": tgt_labels,
            "score": best.score if best else None,
            "alignment": format_pharaoh(links),
            "attention": best.attn.tolist() if best else [],
            "context": best.context.tolist() if best else [],
        }
        extras["write_jsonl"].write(json.dumps(record, ensure_ascii=False) + "\n")
    if cfg.write_heatmaps and best is not None:
        from nmt.viz import alignment_figure, save_figure

        figure = alignment_figure(best.attn.numpy(), src_labels, tgt_labels, title=source[:80])
        save_figure(figure, Path(cfg.write_heatmaps) / f"{number:06d}.{cfg.heatmap_format}")
