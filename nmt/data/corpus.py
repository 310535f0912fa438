"""Parallel corpora: one interface over local files, TSV, Hugging Face datasets and the presets.

Every source ends up as a ``ParallelSplit`` (source lines, target lines, optional gold alignments),
so cleaning, tokenization and batching never care where the text came from. Bad input fails here,
early, with the file and line (or dataset and option) in the message.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nmt.config import DataConfig

# Split names users write, and the names corpora use for them.
SPLIT_ALIASES = {
    "valid": ("valid", "val", "validation", "dev"),
    "val": ("val", "valid", "validation", "dev"),
}
MULTI30K_HUB_ID = "bentrevett/multi30k"
MULTI30K_HUB_SPLITS = {
    "train": "train",
    "valid": "validation",
    "val": "validation",
    "test": "test",
    "test_2016_flickr": "test",
}


class DataError(ValueError):
    """Input data that cannot be used; the message names the file, line or option."""


@dataclass
class ParallelSplit:
    """One split of a parallel corpus: line i of ``src`` translates line i of ``tgt``."""

    name: str
    src: list[str]
    tgt: list[str]
    origin: str  # where it was read from, for messages and statistics
    alignments: list[str] | None = None  # Pharaoh "i-j" lines, source-target order
    alignments_origin: str | None = None  # the file they were read from

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, indices: list[int]) -> ParallelSplit:
        """The pairs at ``indices`` (and their gold links), in that order."""
        alignments = None if self.alignments is None else [self.alignments[i] for i in indices]
        return ParallelSplit(
            self.name,
            [self.src[i] for i in indices],
            [self.tgt[i] for i in indices],
            self.origin,
            alignments,
            self.alignments_origin,
        )


@dataclass
class CleaningReport:
    """How many pairs each filter removed from one split, and the words of those it kept."""

    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    words: tuple[int, int] = (0, 0)  # whitespace words, source and target


def line_blocks(path: Path, block_bytes: int = 1 << 22) -> Iterator[list[str]]:
    """The lines of a UTF-8 text file (``.gz`` accepted), without line ends, a block of lines at
    a time: decoding megabytes at once costs a fraction of decoding line by line."""
    number = 1
    for data in byte_blocks(path, block_bytes):
        lines = _decoded(path, number, data)
        number += len(lines)
        yield lines


def byte_blocks(path: Path, block_bytes: int = 1 << 22) -> Iterator[bytes]:
    """The file's whole lines (``.gz``: its text) in blocks, each ending with a newline."""
    opener = gzip.open if path.suffix == ".gz" else open
    rest = b""  # what follows the last newline read
    try:
        with opener(path, "rb") as handle:
            while block := handle.read(block_bytes):
                end = block.rfind(b"\n") + 1
                if not end:
                    rest += block
                    continue
                yield rest + block[:end]
                rest = block[end:]
            if rest:
                yield rest + b"\n"
    except (OSError, EOFError) as error:  # missing, a directory, not gzip, a truncated .gz
        reason = getattr(error, "strerror", None) or error
        raise DataError(f"{path}: cannot read it ({reason})") from None


def _decoded(path: Path, number: int, data: bytes) -> list[str]:
    """The lines of ``data`` (whole lines, the first numbered ``number``) as text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = number + data.count(b"\n", 0, error.start)
        raise DataError(
            f"{path}:{line}: not valid UTF-8 ({error.reason} at byte {error.start - line_start})"
        ) from None
    lines = text.split("\n")
    lines.pop()  # what follows the last newline: nothing
    return [line.rstrip("\r") for line in lines] if "\r" in text else lines


def numbered_lines(path: Path, only: Sequence[int] | None = None) -> Iterator[tuple[int, str]]:
    """``(number, line)`` for the lines of a UTF-8 text file (``.gz`` accepted), 1-based; ``only``:
    just these 0-based line numbers, in increasing order (the others are not decoded)."""
    number = 1  # of the block's first line
    chosen = None if only is None else np.asarray(only, dtype=np.int64) + 1
    for data in byte_blocks(path):
        if chosen is None:
            lines = _decoded(path, number, data)
            yield from enumerate(lines, start=number)
            number += len(lines)
            continue
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
        low, high = np.searchsorted(chosen, (number, number + len(ends)))
        for line in chosen[low:high].tolist():
            start = int(ends[line - number - 1]) if line > number else 0
            yield line, _decoded(path, line, data[start : ends[line - number]])[0]
        number += len(ends)


def iter_lines(path: Path, only: Sequence[int] | None = None) -> Iterator[str]:
    """The lines of a UTF-8 text file (``.gz`` accepted), without line ends, one at a time."""
    return (line for _, line in numbered_lines(path, only))


def read_lines(path: Path) -> list[str]:
    """Read a UTF-8 text file (``.gz`` accepted), one entry per line, without line ends."""
    return list(iter_lines(path))


def read_parallel_files(src_path: Path, tgt_path: Path, name: str) -> ParallelSplit:
    """Read two line-aligned files; different line counts are an error naming both files."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise unequal_files([src_path, tgt_path], [len(src), len(tgt)])
    return ParallelSplit(name, src, tgt, origin=f"{src_path} + {tgt_path}")


def unequal_files(paths: list[Path], counts: list[int]) -> DataError:
    """The error for parallel files of different lengths, naming both with their counts."""
    return DataError(
        f"parallel files differ in length: {paths[0]} has {counts[0]} lines, "
        f"{paths[1]} has {counts[1]}"
    )


def read_tsv(path: Path, name: str) -> ParallelSplit:
    """Read ``source<TAB>target`` lines; any other column count is an error naming the line."""
    src, tgt = [], []
    for number, line in enumerate(read_lines(path), start=1):
        columns = line.split("\t")
        if len(columns) != 2:
            raise DataError(
                f"{path}:{number}: expected 2 tab-separated columns, found {len(columns)}"
            )
        src.append(columns[0])
        tgt.append(columns[1])
    return ParallelSplit(name, src, tgt, origin=str(path))


def _find_file(root: Path, stem: str) -> Path | None:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_split_files(root: Path, split: str, src: str, tgt: str) -> tuple[str, list[Path]]:
    """The split's name as found (aliases) and its files: ``[{name}.{src}, {name}.{tgt}]`` (each
    optionally ``.gz``) or ``[{name}.tsv]``."""
    if not root.is_dir():
        raise DataError(f"data.root={root} is not a directory")
    for name in SPLIT_ALIASES.get(split, (split,)):
        src_path, tgt_path = _find_file(root, f"{name}.{src}"), _find_file(root, f"{name}.{tgt}")
        if src_path and tgt_path:
            return name, [src_path, tgt_path]
        if src_path or tgt_path:
            missing = f"{name}.{tgt}" if src_path else f"{name}.{src}"
            raise DataError(
                f"{src_path or tgt_path} has no counterpart: {root / missing}[.gz] is missing"
            )
        if tsv := _find_file(root, f"{name}.tsv"):
            return name, [tsv]
    tried = ", ".join(f"{n}.{src}/{n}.{tgt}/{n}.tsv" for n in SPLIT_ALIASES.get(split, (split,)))
    raise DataError(f"split {split!r} not found in {root} (looked for {tried}, optionally .gz)")


def load_files(root: Path, split: str, src: str, tgt: str) -> ParallelSplit:
    """Load ``{root}/{split}.{lang}[.gz]`` (or ``{root}/{split}.tsv[.gz]``) with split aliases.

    A ``{split}.align`` file beside them, if present, is read as gold alignments (source-target).
    """
    name, paths = find_split_files(root, split, src, tgt)
    pairs = read_parallel_files(*paths, split) if len(paths) == 2 else read_tsv(paths[0], split)
    align_path = _find_file(root, f"{name}.align")
    if align_path:
        pairs.alignments, pairs.alignments_origin = read_lines(align_path), str(align_path)
        if len(pairs.alignments) != len(pairs):
            raise DataError(
                f"{align_path} has {len(pairs.alignments)} lines, but the split "
                f"has {len(pairs)} sentence pairs"
            )
    return pairs


def load_split(cfg: DataConfig, split: str) -> ParallelSplit:
    """Load one split (``train``, ``valid`` or a test set name) from the configured source."""
    from nmt.data.hub import load_hub

    if cfg.source == "generated":
        return _load_generated(cfg, split)
    if cfg.source == "files":
        return load_files(Path(cfg.root), split, cfg.src, cfg.tgt)
    if cfg.source == "multi30k" and cfg.root is not None:
        return load_files(Path(cfg.root), "val" if split == "valid" else split, cfg.src, cfg.tgt)
    if cfg.source == "multi30k":
        if split not in MULTI30K_HUB_SPLITS:
            raise DataError(
                f"{MULTI30K_HUB_ID} has no split {split!r}; it has "
                f"{', '.join(MULTI30K_HUB_SPLITS)} (or give data.root= a local copy)"
            )
        name = cfg.name or MULTI30K_HUB_ID  # data.name: another hub id or a local copy of it
        return load_hub(name, None, MULTI30K_HUB_SPLITS[split], cfg.src, cfg.tgt)
    return load_hub(cfg.name, cfg.subset, split, cfg.src, cfg.tgt)


def generated_root(cfg: DataConfig) -> Path:
    """The built-in corpus' files for these sizes and seed, written on first use."""
    from nmt.data.generated import generate_splits, is_complete, write_splits

    if {cfg.src, cfg.tgt} != {"en", "de"}:
        raise DataError(
            f"the generated corpus is English-German; data.src={cfg.src!r} and "
            f"data.tgt={cfg.tgt!r} must be 'en' and 'de' (either direction)"
        )
    sizes = "-".join(str(size) for size in cfg.generated_sizes)
    root = Path(cfg.cache_dir) / f"generated-seed{cfg.generated_seed}-{sizes}"
    if not is_complete(root):
        write_splits(generate_splits(cfg.generated_sizes, cfg.generated_seed), root)
    return root


def _load_generated(cfg: DataConfig, split: str) -> ParallelSplit:
    from nmt.data.generated import reverse_alignment

    pairs = load_files(generated_root(cfg), split, cfg.src, cfg.tgt)
    if pairs.alignments is not None and cfg.src == "de":
        pairs.alignments = [reverse_alignment(line) for line in pairs.alignments]
    return pairs


def clean(
    pairs: ParallelSplit,
    min_len: int = 1,
    max_len: int | None = None,
    max_len_ratio: float | None = None,
) -> tuple[ParallelSplit, CleaningReport]:
    """Drop empty pairs, and pairs outside the word-length and length-ratio limits (if given).

    Lengths are whitespace words, so the filters do not depend on the tokenizer being trained.
    A pair is counted under the first reason that drops it: empty, short, long, ratio.
    """
    src_words = np.array([len(line.split()) for line in pairs.src], dtype=np.int64)
    tgt_words = np.array([len(line.split()) for line in pairs.tgt], dtype=np.int64)
    shorter, longer = np.minimum(src_words, tgt_words), np.maximum(src_words, tgt_words)
    reasons = [("empty", shorter == 0), (f"shorter than {min_len} words", shorter < min_len)]
    if max_len is not None:
        reasons.append((f"longer than {max_len} words", longer > max_len))
    if max_len_ratio is not None:
        ratio = longer / np.maximum(shorter, 1)
        reasons.append((f"length ratio above {max_len_ratio:g}", ratio > max_len_ratio))
    report, dropped = CleaningReport(), np.zeros(len(shorter), dtype=bool)
    for reason, hit in reasons:
        count = int((hit & ~dropped).sum())
        if count:
            report.dropped[reason] = count
        dropped |= hit
    keep = np.flatnonzero(~dropped)
    report.kept = len(keep)
    report.words = (int(src_words[keep].sum()), int(tgt_words[keep].sum()))
    cleaned = pairs.subset(keep.tolist()) if len(keep) < len(pairs) else pairs
    src, tgt = list(map(str.strip, cleaned.src)), list(map(str.strip, cleaned.tgt))
    return replace(cleaned, src=src, tgt=tgt), report
