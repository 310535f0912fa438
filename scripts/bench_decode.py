"""The decoding half of `make bench`, and the measured subprocess runner both halves share.

Decoding speed means little for an untrained model (its outputs run to the length limit or stop
at once), so unless a checkpoint is given our 15-minute recipe (the peer shape with tied
embeddings) is trained for a few minutes with ``nmt-train``, a checkpoint kept every so many
updates: scored on the test set, they are the learning curve ``time_to_peer_bleu_min`` is read
from, and the last one is the model decoded. Two figures per search: "decoding only"
(``decoding.translate_lines`` over the loaded sentences, the peers' own timers) and "whole
command" (``nmt-translate`` from process start to exit, imports and model loading included), as
in ../shared/docs/BENCHMARKS.md.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from nmt.checkpoint import load_checkpoint
from nmt.config import Config
from nmt.data.batching import collate, epoch_batches
from nmt.data.corpus import load_split
from nmt.inference.decoding import encode_sources, load_translator, translate_lines
from nmt.metrics import corpus_scores

TRAIN = "from nmt.commands.cli import train; train()"
TRANSLATE = "from nmt.commands.cli import translate; translate()"
SEARCHES = {"greedy": 1, "beam5": 5}
CURVE_RECIPE = "m30k_deen_15m"  # what the decoding model and time_to_peer_bleu_min train


@dataclass
class Measured:
    """One finished subprocess: wall time from start to exit, and its own peak RSS."""

    seconds: float
    peak_rss_mib: float
    returncode: int


def run_measured(
    command: list[str], threads: int, env: dict | None = None, log: Path | None = None
) -> Measured:
    """Run ``command`` with ``threads`` BLAS/OpenMP threads; time it and read its peak RSS.

    The peak is the child's own ``VmHWM`` (high-water mark of its resident set since its
    ``exec``), polled every 20 ms until it exits. ``ru_maxrss`` would be wrong here: Linux
    folds in the pages the forked child shared with this (large) benchmark process before exec.
    """
    threads_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env = dict(os.environ) | threads_env | (env or {})
    started = time.perf_counter()
    output = open(log, "w") if log else None  # noqa: SIM115 (closed below, after the wait)
    process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    peak_kib = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak_kib = max(peak_kib, _vm_hwm_kib(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if output:
        output.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(seconds, (peak_kib or usage.ru_maxrss) / 1024, process.returncode)


def _vm_hwm_kib(pid: int) -> int:
    """``VmHWM`` of a running process in KiB; 0 where /proc does not tell (or it just exited)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def train_curve_model(overrides: list[str], minutes: float, every: int, threads: int) -> Path:
    """Train ``CURVE_RECIPE`` for ``minutes`` (its schedule annealed over them) into
    bench/decode_run, keeping a checkpoint at every validation (each ``every`` updates).

    Validation decodes 200 validation sentences greedily and draws nothing, so the learning curve
    costs little of the budget; its time still counts, as every second from process start does.
    """
    run_dir = Path("bench/decode_run")
    shutil.rmtree(run_dir, ignore_errors=True)  # a curve of this run only
    recipe = [o for o in overrides if not o.startswith("experiment=")]
    command = [
        sys.executable,
        "-c",
        TRAIN,
        f"experiment={CURVE_RECIPE}",
        *recipe,
        f"train.max_time={minutes:g}m",
        f"train.val_every={every}",
        "train.keep_checkpoints=1000",
        "train.val_sentences=200",
        "train.plot_sentences=0",
        "train.explore_sentences=0",
        f"hydra.run.dir={run_dir}",
    ]
    print(f"training the decoding model for {minutes:g} min: {' '.join(command[3:])}", flush=True)
    result = run_measured(command, threads)
    if result.returncode != 0:
        raise RuntimeError(f"nmt-train exited with status {result.returncode}")
    return run_dir


def learning_curve(run_dir: Path, lines: list[str], references: list[str]) -> list[dict]:
    """Beam-5 test BLEU of every kept checkpoint, with the training minutes it was saved at
    (from process start, validations included)."""
    checkpoints = sorted(
        (run_dir / "checkpoints").glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1])
    )
    curve = []
    for path in checkpoints:
        progress = load_checkpoint(path)["progress"]
        loaded = load_translator(str(path))
        decode = replace(loaded.decode, beam_size=5, n_best=1, precision="fp32", shortlist=0)
        found = translate_lines(loaded, lines, decode, loaded.data.max_tokens)
        outputs = [loaded.vocabs.tgt.decode(hyps[0].tokens) if hyps else "" for hyps in found]
        bleu = corpus_scores(outputs, references)[0].value
        minutes = progress["elapsed_s"] / 60
        curve.append(
            {"checkpoint": str(path), "step": progress["step"], "minutes": minutes, "bleu": bleu}
        )
        print(f"  {path.name}: {minutes:.2f} min, test BLEU {bleu:.2f}", flush=True)
    return curve


def first_reaching(curve: list[dict], bleu: float) -> float | None:
    """Minutes of training until a checkpoint scores at least ``bleu``; None if none does."""
    return next((point["minutes"] for point in curve if point["bleu"] >= bleu), None)


def source_lines(cfg: Config, limit: int) -> list[str]:
    """Source side of the preset's first test set (test_2016_flickr, or the generated test)."""
    lines = load_split(cfg.data, cfg.data.test_sets[0]).src
    return lines[:limit] if limit > 0 else lines


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def variant_name(precision: str, shortlist: int) -> str:
    """``fp32``, ``int8_shortlist``...: the middle of a ``decode_<variant>_<search>_*`` key."""
    return precision + ("_shortlist" if shortlist else "")


def decode_in_process(
    checkpoint: str,
    lines: list[str],
    device: str,
    variants: list[tuple[str, int]],
    references: list[str],
    repeats: int = 1,
    workers: dict[str, int] | None = None,
) -> dict:
    """Sentences/s, mean output length (pieces, EOS excluded) and BLEU of greedy and beam 5.

    Only ``translate_lines`` is timed, after the model is loaded and one small batch has warmed up
    the kernels: this is the "decoding only" column of BENCHMARKS.md; with ``repeats`` > 1 the
    median of that many runs (a shared host drifts by a quarter from minute to minute);
    ``workers``: the ``decode.workers`` of each search (default 1). Keys are
    ``decode_<precision>[_shortlist]_<greedy|beam5>_<sents_per_s|bleu|decode_s|mean_len>`` for
    every (precision, shortlist) of ``variants``; BLEU is sacreBLEU's, detokenized, against
    ``references``; the search is the checkpoint's own (alpha, max length) at beam 1 and 5.
    """
    loaded = load_translator(checkpoint, device)
    results: dict[str, float] = {}
    for (search, beam), (precision, k) in itertools.product(SEARCHES.items(), variants):
        name = f"decode_{variant_name(precision, k)}_{search}"
        decode = replace(
            loaded.decode, beam_size=beam, n_best=1, precision=precision, shortlist=k, device=device
        )
        translate_lines(loaded, lines[:8], decode, loaded.data.max_tokens)
        decode = replace(decode, workers=(workers or {}).get(search, 1))
        times = []
        for _ in range(repeats):
            _sync(device)
            started = time.perf_counter()
            found = translate_lines(loaded, lines, decode, loaded.data.max_tokens)
            _sync(device)
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        lengths = [len(hyps[0].tokens) for hyps in found if hyps]
        outputs = [loaded.vocabs.tgt.decode(hyps[0].tokens) if hyps else "" for hyps in found]
        results[f"{name}_bleu"] = corpus_scores(outputs, references)[0].value
        results[f"{name}_sents_per_s"] = len(lines) / seconds
        results[f"{name}_decode_s"] = seconds
        results[f"{name}_mean_len"] = sum(lengths) / max(len(lengths), 1)
    return results


def shortlist_sizes(checkpoint: str, lines: list[str], shortlist: int) -> dict:
    """How many of the target pieces the decoding batches' shortlists keep: min, median, max."""
    translator = load_translator(checkpoint)
    split = encode_sources(lines, translator.vocabs, translator.data.max_tokens)
    frequent, size = translator.decode.shortlist_frequent, translator.decode.batch_size
    batches = epoch_batches(split, 10**9, size, seed=None)
    sizes = sorted(
        len(translator.shortlist.candidates(collate(split, b).src.numpy(), shortlist, frequent))
        for b in batches
    )
    return {
        "decode_shortlist_candidates_min": sizes[0],
        "decode_shortlist_candidates_median": sizes[len(sizes) // 2],
        "decode_shortlist_candidates_max": sizes[-1],
        "decode_vocabulary": len(translator.vocabs.tgt),
    }


def decode_commands(
    checkpoint: str,
    source: Path,
    lines: int,
    threads: int,
    device: str,
    variant: tuple[str, int],
    repeats: int = 1,
    workers: dict[str, int] | None = None,
) -> dict:
    """Wall time and peak RSS of whole ``nmt-translate`` processes (start-up, model loading and
    writing included) with the given (precision, shortlist) and ``decode.workers`` per search:
    ``command_<variant>_<search>_*``, the median of ``repeats`` runs."""
    precision, shortlist = variant
    results: dict[str, float] = {}
    for name, beam in SEARCHES.items():
        command = [
            sys.executable,
            "-c",
            TRANSLATE,
            f"checkpoint={checkpoint}",
            f"input={source}",
            f"output=bench/decode_output.{name}",
            f"decode.beam_size={beam}",
            f"decode.precision={precision}",
            f"decode.shortlist={shortlist}",
            f"decode.device={device}",
            f"decode.workers={(workers or {}).get(name, 1)}",
        ]
        runs = [run_measured(command, threads) for _ in range(repeats)]
        if any(run.returncode != 0 for run in runs):
            raise RuntimeError(f"nmt-translate ({name}) exited with status {runs[-1].returncode}")
        result = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
        key = f"command_{variant_name(*variant)}_{name}"
        results[f"{key}_s"] = result.seconds
        results[f"{key}_sents_per_s"] = lines / result.seconds
        results[f"{key}_peak_rss_mib"] = result.peak_rss_mib
    return results
