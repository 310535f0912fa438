"""Hugging Face datasets as parallel splits: by hub id, a saved dataset or a local json/parquet/csv
file, in either layout (a ``translation`` column of ``{lang: text}`` dicts, or a column per
language). ``hub_rows`` gives the Arrow-backed rows, which training streams in batches.
"""

from __future__ import annotations

from pathlib import Path

from nmt.data.corpus import SPLIT_ALIASES, DataError, ParallelSplit


def _hub_split(dataset_dict, name: str, split: str):
    for candidate in SPLIT_ALIASES.get(split, (split,)):
        if candidate in dataset_dict:
            return dataset_dict[candidate]
    raise DataError(f"dataset {name} has no split {split!r}; it has: {', '.join(dataset_dict)}")


def load_hub(name: str, subset: str | None, split: str, src: str, tgt: str) -> ParallelSplit:
    """Load one split of a Hugging Face dataset, by hub id or local path.

    Two layouts are understood: a ``translation`` column of ``{lang: text}`` dicts (wmt14,
    iwslt2017, opus_books) and one column per language code (bentrevett/multi30k).
    """
    rows = hub_rows(name, subset, split, src, tgt)
    return hub_pairs(rows[:], split, src, tgt, origin=name)


def hub_rows(name: str, subset: str | None, split: str, src: str, tgt: str):
    """The ``datasets.Dataset`` of one split (Arrow, memory-mapped), its languages checked."""
    import datasets

    datasets.logging.set_verbosity_error()
    path = Path(name)
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        dataset_dict = datasets.load_from_disk(str(path))
    elif path.is_file():
        builder = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
        if path.suffix not in builder:
            raise DataError(f"data.name={name}: cannot read a {path.suffix!r} file as a dataset")
        dataset_dict = datasets.load_dataset(builder[path.suffix], data_files={split: str(path)})
    else:
        try:
            dataset_dict = datasets.load_dataset(name, subset)
        except (FileNotFoundError, ConnectionError, ValueError) as error:
            raise DataError(
                f"cannot load Hugging Face dataset {name!r} ({error}); offline, use a local "
                "copy: data.name=<path> (or data=multi30k data.root=<dir>)"
            ) from None
    rows = _hub_split(dataset_dict, name, split)
    if "translation" in rows.column_names:
        _check_languages(name, list(rows[0]["translation"]) if len(rows) else [], src, tgt)
    else:
        _check_languages(name, rows.column_names, src, tgt)
    return rows


def hub_pairs(columns: dict, split: str, src: str, tgt: str, origin: str) -> ParallelSplit:
    """A batch of dataset rows (``{column: values}``) as pairs, in either layout."""
    if "translation" in columns:
        pairs = columns["translation"]
        return ParallelSplit(split, [p[src] for p in pairs], [p[tgt] for p in pairs], origin=origin)
    return ParallelSplit(split, list(columns[src]), list(columns[tgt]), origin=origin)


def _check_languages(name: str, available: list[str], src: str, tgt: str) -> None:
    for option, code in (("data.src", src), ("data.tgt", tgt)):
        if code not in available:
            raise DataError(
                f"{option}={code!r} is not a language of dataset {name}; "
                f"it has: {', '.join(available)}"
            )
