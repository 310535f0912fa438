"""nmt-translate: a checkpoint and sentences in, translations (and their attention) out.

Input order is kept although batches are sorted by length; empty lines give empty lines; a
terminal on stdin is served line by line, so the command doubles as an interactive translator.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import IO

from nmt.data.corpus import DataError, read_lines
from nmt.files import atomic_write
from nmt.inference.align import format_pharaoh, word_alignment
from nmt.inference.decoding import Translator, load_translator, search_settings, translate_lines
from nmt.inference.search import Hypothesis
from nmt.schemas import TranslateConfig

OUTPUTS = ("output", "write_alignments", "write_nbest", "write_jsonl")


def _check_paths(cfg: TranslateConfig) -> None:
    """Refuse bad paths before anything is read, loaded or written."""
    if cfg.input not in (None, "-"):
        source = Path(cfg.input)
        if source.is_dir():
            raise DataError(f"input={cfg.input} is a directory; give a text file")
        if not source.exists():
            raise DataError(f"input={cfg.input} does not exist")
    for option in OUTPUTS:
        path = getattr(cfg, option)
        if path in (None, "-"):
            continue
        if Path(path).is_dir():
            raise DataError(f"{option}={path} is a directory; give a file name")
        if cfg.input not in (None, "-") and Path(path).resolve() == Path(cfg.input).resolve():
            raise DataError(f"{option}={path} is the input file; write the output elsewhere")
    if cfg.attention_logdir and Path(cfg.attention_logdir).is_file():
        raise DataError(f"attention_logdir={cfg.attention_logdir} is a file; give a directory")


def _open(option: str, path: str | None, stack: ExitStack) -> IO[str] | None:
    """stdout for "-"; a file that replaces ``path`` only when the command succeeds."""
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    try:
        return stack.enter_context(atomic_write(path, "w", encoding="utf-8"))
    except OSError as error:
        raise DataError(f"{option}={path}: cannot write there ({error.strerror})") from None


def _read_input(path: str | None) -> Iterator[list[str]]:
    """Chunks of input lines: the whole file at once, or one line at a time from a terminal."""
    if path is not None and path != "-":
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


def translate(cfg: TranslateConfig, decode_given: Collection[str] | None = None) -> None:
    """The nmt-translate command. Search options not in ``decode_given`` (the ``decode.*`` set on
    the command line; None: all) are the checkpoint's. Output files appear (or are replaced)
    only when every line is translated: a failure leaves what was on disk as it was."""
    _check_paths(cfg)
    translator = load_translator(cfg.checkpoint, cfg.decode.device)
    cfg = replace(cfg, decode=search_settings(translator, cfg.decode, decode_given))
    offset, sources = 0, []
    with ExitStack() as stack:
        out = _open("output", cfg.output or "-", stack)
        extras = {name: _open(name, getattr(cfg, name), stack) for name in OUTPUTS[1:]}
        for lines in _read_input(cfg.input):
            for number, hypotheses in enumerate(
                translate_lines(translator, lines, cfg.decode, cfg.max_tokens), start=offset
            ):
                _write(cfg, translator, lines[number - offset], number, hypotheses, out, extras)
            offset += len(lines)
            sources += lines if cfg.attention_logdir else []
            out.flush()
    if cfg.attention_logdir:
        _log_attention(cfg, translator, sources)


def _log_attention(cfg: TranslateConfig, translator: Translator, sources: list[str]) -> None:
    """The explorer records of every non-empty input line, for ``tensorboard --logdir``."""
    from nmt.inference.explore import explore
    from nmt.tensorboard_plugin.records import write_records

    numbers = [i for i, line in enumerate(sources) if line.strip()]
    found = explore(
        translator.model,
        translator.vocabs,
        [sources[i] for i in numbers],
        cfg.decode,
        indices=numbers,
        max_tokens=cfg.max_tokens,
    )
    try:
        Path(cfg.attention_logdir).mkdir(parents=True, exist_ok=True)
        write_records(cfg.attention_logdir, "translate", found)
    except OSError as error:
        message = f"attention_logdir={cfg.attention_logdir}: cannot write there ({error.strerror})"
        raise DataError(message) from None
    print(
        f"attention of {len(found)} sentences: tensorboard --logdir {cfg.attention_logdir}",
        file=sys.stderr,
    )


def _write(
    cfg: TranslateConfig,
    translator: Translator,
    source: str,
    number: int,
    hypotheses: list[Hypothesis],
    out: IO[str],
    extras: dict,
) -> None:
    """Write one input line's translation and whatever extra outputs were asked for."""
    vocabs = translator.vocabs
    best = hypotheses[0] if hypotheses else None
    out.write((vocabs.tgt.decode(best.tokens) if best else "") + "\n")
    if extras["write_nbest"]:
        for hypothesis in hypotheses:
            text = vocabs.tgt.decode(hypothesis.tokens)
            extras["write_nbest"].write(f"{number} ||| {text} ||| {hypothesis.score:.4f}\n")
    if extras["write_alignments"] or extras["write_jsonl"] or cfg.write_heatmaps:
        _write_attention(cfg, translator, source, number, best, extras)


def _write_attention(
    cfg: TranslateConfig,
    translator: Translator,
    source: str,
    number: int,
    best: Hypothesis | None,
    extras: dict,
) -> None:
    """Word alignments, the JSONL record and the heatmap of the best hypothesis' attention."""
    vocabs = translator.vocabs
    src_labels, tgt_labels, links = [], [], set()
    if best is not None:
        src_pieces = vocabs.src.pieces(vocabs.src.encode(source)[: cfg.max_tokens])
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
