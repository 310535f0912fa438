"""The decoding half of `make bench`, and the measured subprocess runner both halves share.

Decoding speed means little for an untrained model (its outputs run to the length limit or stop
at once), so unless a checkpoint is given a peer-shape model is first trained for a few minutes
with ``nmt-train``. Two figures per search: "decoding only" (``decoding.translate_lines`` over
the loaded sentences, the peers' own timers) and "whole command" (``nmt-translate`` from process
start to exit, imports and model loading included), as in ../shared/docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from nmt.config import Config
from nmt.data.batching import collate, epoch_batches
from nmt.data.corpus import load_split
from nmt.inference.decoding import encode_sources, load_translator, translate_lines
from nmt.metrics import corpus_scores

TRAIN = "from nmt.commands.cli import train; train()"
TRANSLATE = "from nmt.commands.cli import translate; translate()"
SEARCHES = {"greedy": 1, "beam5": 5}


@dataclass
class Measured:
    """One finished subprocess: wall time from start to exit, and its own peak RSS."""

    seconds: float
    peak_rss_mib: float
    returncode: int


def run_measured(command: list[str], threads: int) -> Measured:
    """Run ``command`` with ``threads`` BLAS/OpenMP threads; time it and read its peak RSS.

    The peak is the child's own ``VmHWM`` (high-water mark of its resident set since its
    ``exec``), polled every 20 ms until it exits. ``ru_maxrss`` would be wrong here: Linux
    folds in the pages the forked child shared with this (large) benchmark process before exec.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    peak_kib = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak_kib = max(peak_kib, _vm_hwm_kib(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
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


def train_decode_model(overrides: list[str], minutes: float, threads: int) -> str:
    """Train the preset for ``minutes`` with nmt-train into bench/peer_run; return that run dir.

    Validation (which writes ``best``) only happens when the budget ends; it decodes 200
    validation sentences rather than all of them to keep the benchmark's total time down.
    """
    run_dir = "bench/peer_run"
    command = [
        sys.executable,
        "-c",
        TRAIN,
        *overrides,
        f"train.max_time={minutes:g}m",
        "train.val_sentences=200",
        f"hydra.run.dir={run_dir}",
    ]
    print(f"training the decoding model for {minutes:g} min: {' '.join(command[3:])}", flush=True)
    result = run_measured(command, threads)
    if result.returncode != 0:
        raise RuntimeError(f"nmt-train exited with status {result.returncode}")
    return run_dir


def source_lines(cfg: Config, limit: int) -> list[str]:
    """Source side of the preset's first test set (test_2016_flickr, or the generated test)."""
    lines = load_split(cfg.data, cfg.data.test_sets[0]).src
    return lines[:limit] if limit > 0 else lines


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def decode_in_process(
    cfg: Config,
    checkpoint: str,
    lines: list[str],
    device: str,
    precisions: list[str],
    references: list[str],
    shortlist: int = 0,
) -> dict:
    """Sentences/s, mean output length (pieces, EOS excluded) and BLEU of greedy and beam 5.

    Only ``translate_lines`` is timed, after the model is loaded and one small batch has warmed up
    the kernels: this is the "decoding only" column of BENCHMARKS.md. Keys are ``greedy_*`` and
    ``beam5_*`` for float32, ``greedy_<precision>_*`` and ``beam5_<precision>_*`` for
    decode.precision=bf16 or int8, each also ``..._shortlist_*`` with ``decode.shortlist``;
    BLEU is sacreBLEU's, detokenized, against ``references``.
    """
    loaded = load_translator(checkpoint, device)
    results: dict[str, float] = {}
    lists = [0, shortlist] if shortlist else [0]
    for (search, beam), precision, k in itertools.product(SEARCHES.items(), precisions, lists):
        name = (
            search + ("" if precision == "fp32" else f"_{precision}") + ("_shortlist" if k else "")
        )
        decode = replace(cfg.decode, beam_size=beam, n_best=1, precision=precision, shortlist=k)
        translate_lines(loaded, lines[:8], decode, cfg.data.max_tokens)
        _sync(device)
        started = time.perf_counter()
        found = translate_lines(loaded, lines, decode, cfg.data.max_tokens)
        _sync(device)
        seconds = time.perf_counter() - started
        lengths = [len(hyps[0].tokens) for hyps in found if hyps]
        outputs = [loaded.vocabs.tgt.decode(hyps[0].tokens) if hyps else "" for hyps in found]
        results[f"{name}_bleu"] = corpus_scores(outputs, references)[0].value
        results[f"{name}_sents_per_s"] = len(lines) / seconds
        results[f"{name}_decode_s"] = seconds
        results[f"{name}_mean_len"] = sum(lengths) / max(len(lengths), 1)
    return results


def shortlist_sizes(cfg: Config, checkpoint: str, lines: list[str], shortlist: int) -> dict:
    """How many of the target pieces the decoding batches' shortlists keep: min, median, max."""
    translator = load_translator(checkpoint)
    split = encode_sources(lines, translator.vocabs, cfg.data.max_tokens)
    frequent, size = cfg.decode.shortlist_frequent, cfg.decode.batch_size
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
    cfg: Config, checkpoint: str, lines: list[str], threads: int, device: str
) -> dict:
    """Wall time and peak RSS of whole ``nmt-translate`` processes, decoding on ``device``."""
    source = Path("bench") / f"decode_input.{cfg.data.src}"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    results: dict[str, float] = {}
    for name, beam in SEARCHES.items():
        command = [
            sys.executable,
            "-c",
            TRANSLATE,
            f"checkpoint={checkpoint}",
            f"input={source}",
            f"output=bench/decode_output.{name}.{cfg.data.tgt}",
            f"decode.beam_size={beam}",
            f"decode.alpha={cfg.decode.alpha}",
            f"decode.batch_size={cfg.decode.batch_size}",
            f"decode.device={device}",
            f"max_tokens={cfg.data.max_tokens}",
        ]
        result = run_measured(command, threads)
        if result.returncode != 0:
            raise RuntimeError(f"nmt-translate ({name}) exited with status {result.returncode}")
        results[f"{name}_command_s"] = result.seconds
        results[f"{name}_command_sents_per_s"] = len(lines) / result.seconds
        results[f"{name}_command_peak_rss_mib"] = result.peak_rss_mib
    return results


def measure_decoding(args: argparse.Namespace, cfg: Config, overrides: list[str]) -> dict:
    """Greedy and beam-5 speed on the preset's test set with a (briefly) trained model."""
    checkpoint = args.checkpoint or train_decode_model(
        overrides, args.decode_train_minutes, args.threads
    )
    lines = source_lines(cfg, args.decode_sentences)
    print(
        f"decoding {len(lines):,} sentences of {cfg.data.test_sets[0]} ({checkpoint})", flush=True
    )
    results = {
        "decode_checkpoint": str(checkpoint),
        "decode_set": cfg.data.test_sets[0],
        "decode_sentences": len(lines),
        "decode_batch_size": cfg.decode.batch_size,
        "decode_alpha": cfg.decode.alpha,
    }
    precisions = ["fp32", *(p for p in args.precision if p != "fp32")]
    references = load_split(cfg.data, cfg.data.test_sets[0]).tgt[: len(lines)]
    results |= decode_in_process(
        cfg, checkpoint, lines, args.device, precisions, references, args.shortlist
    )
    results["decode_shortlist"] = args.shortlist
    if args.shortlist:
        results |= shortlist_sizes(cfg, checkpoint, lines, args.shortlist)
    return results | decode_commands(cfg, checkpoint, lines, args.threads, args.device)
