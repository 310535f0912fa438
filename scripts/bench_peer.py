"""OpenNMT-py beside `make bench`, in the same sitting: its figures and nmt's ratios to them.

``../shared/peers/onmt.sh`` trains the peer's 15-minute model on this machine and leaves it, with
its result line ``peer_result.json``, under ``$PEERS_DIR`` (default /tmp/peers). From there this
module takes the peer's BLEU (what ``time_to_peer_bleu_min`` aims at) and re-times its decoding
now, next to ours: ``onmt_translate`` exactly as onmt.sh runs it, per search, giving both
"decoding only" (its own ``-report_time`` total) and "whole command" (process start to exit).
"""

from __future__ import annotations

import json
import os
import re
import statistics
from pathlib import Path

from bench_decode import SEARCHES, run_measured

from nmt.metrics import corpus_scores

PEER_BUDGET_S = 900  # the peer's 15-minute model


def peers_dir() -> Path:
    return Path(os.environ.get("PEERS_DIR", "/tmp/peers"))


def peer_model(peers: Path) -> tuple[dict | None, Path | None, str]:
    """(peer_result.json of the 15-minute run, its last checkpoint, why either is missing)."""
    result_file = peers / "peer_result.json"
    if not result_file.is_file():
        return None, None, f"no {result_file}: run ../shared/peers/onmt.sh on this machine first"
    result = json.loads(result_file.read_text())
    if result.get("budget_s") != PEER_BUDGET_S:
        why = f"{result_file} is a {result.get('budget_s')} s run, not the 15-minute model"
        return None, None, why + ": run ../shared/peers/onmt.sh without BUDGET_S"
    checkpoints = sorted(
        (peers / f"onmt_run_{PEER_BUDGET_S}").glob("model_step_*.pt"),
        key=lambda path: int(path.stem.rsplit("_", 1)[1]),
    )
    if not checkpoints or not (peers / "onmt/bin/onmt_translate").is_file():
        return result, None, f"no OpenNMT-py model or onmt_translate under {peers}"
    return result, checkpoints[-1], ""


def time_peer_decoding(
    peers: Path,
    checkpoint: Path,
    source: Path,
    references: list[str],
    threads: int,
    repeats: int = 1,
) -> dict:
    """``peer_<search>_{sents_per_s,command_s,bleu}``: onmt_translate as onmt.sh runs it, the
    median of ``repeats`` runs (as ours are)."""
    results = {}
    lines = len(references)
    for search, beam in SEARCHES.items():
        output = Path("bench") / f"peer_output.{search}"
        log = Path("bench") / f"peer_translate.{search}.log"  # its own log: the timings
        console = Path("bench") / f"peer_translate.{search}.out"  # its warnings
        options = ["-beam_size", str(beam)]
        if beam > 1:
            options += ["-length_penalty", "wu", "-alpha", "1.0"]
        command = [
            str(peers / "onmt/bin/onmt_translate"),
            *("-model", str(checkpoint), "-src", str(source), "-output", str(output)),
            *("-transforms", "sentencepiece"),
            *("-src_subword_model", str(peers / "data/spm8k.model")),
            *("-tgt_subword_model", str(peers / "data/spm8k.model")),
            *options,
            *("-batch_size", "64", "-batch_type", "sents", "-max_length", "100"),
            *("-report_time", "-gpu", "-1", "-seed", "42", "-log_file", str(log)),
        ]
        env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # as onmt.sh: its checkpoints pickle
        commands, decoding = [], []
        for _ in range(repeats):
            log.unlink(missing_ok=True)  # onmt_translate appends to its log file
            measured = run_measured(command, threads, env, console)
            if measured.returncode != 0:
                raise RuntimeError(
                    f"onmt_translate ({search}) exited with {measured.returncode}: see {console}"
                )
            found = re.search(r"Total translation time \(s\): ([0-9.]+)", log.read_text())
            commands.append(measured.seconds)
            decoding.append(float(found.group(1)) if found else None)
        outputs = output.read_text(encoding="utf-8").splitlines()
        timed = None if None in decoding else statistics.median(decoding)
        results |= {
            f"peer_{search}_sents_per_s": lines / timed if timed else None,
            f"peer_{search}_command_s": statistics.median(commands),
            f"peer_{search}_bleu": corpus_scores(outputs, references)[0].value,
        }
    return results


def ratio_rows(results: dict, variants: list[str], floor: float) -> list[tuple[str, ...]]:
    """Rows (what, nmt, its BLEU, peer, its BLEU, nmt/peer) of decode speeds against the peer's.

    A speed ratio is only printed for a model whose BLEU reaches ``floor``: a model that cannot
    translate decodes other work (longer or empty outputs), and its speed compares with nothing.
    """
    rows = []
    for search in SEARCHES:
        peer = results.get(f"peer_{search}_sents_per_s")
        peer_bleu = results.get(f"peer_{search}_bleu")
        for variant in variants:
            ours = results.get(f"decode_{variant}_{search}_sents_per_s")
            bleu = results.get(f"decode_{variant}_{search}_bleu")
            if ours is None:
                continue
            if bleu is None or bleu < floor:
                ratio = f"BLEU < {floor:g}"
            else:
                ratio = f"{ours / peer:.2f}x" if peer else "-"
            rows.append(
                (
                    f"{variant} {search}, sents/s",
                    f"{ours:,.1f}",
                    f"{bleu:.2f}",
                    f"{peer:,.1f}" if peer else "-",
                    f"{peer_bleu:.2f}" if peer_bleu is not None else "-",
                    ratio,
                )
            )
        peer_s = results.get(f"peer_{search}_command_s")
        for variant in variants:
            ours_s = results.get(f"command_{variant}_{search}_s")
            if ours_s is None:
                continue
            bleu = results.get(f"decode_{variant}_{search}_bleu") or 0.0
            ratio = f"1/{peer_s / ours_s:.2f}" if peer_s and bleu >= floor else "-"
            rows.append(
                (
                    f"whole command, {variant} {search}, s",
                    f"{ours_s:.2f}",
                    "",
                    f"{peer_s:.2f}" if peer_s else "-",
                    "",
                    ratio,
                )
            )
    return rows


def print_ratios(results: dict, variants: list[str], floor: float) -> None:
    """The summary: each decode speed against OpenNMT-py's, timed in this sitting."""
    model = results.get("decode_model", {})
    print(
        f"\ndecoding {results.get('decode_sentences')} sentences of {results.get('decode_set')}: "
        f"nmt {model.get('path')} (beam-5 BLEU {model.get('bleu', 0):.2f}), OpenNMT-py "
        f"{results.get('peer_checkpoint', '-')}"
    )
    header = ("", "nmt", "BLEU", "OpenNMT-py", "BLEU", "nmt / peer")
    widths = (42, 9, 7, 12, 7, 12)
    for row in [header, *ratio_rows(results, variants, floor)]:
        print(row[0].ljust(widths[0]) + "".join(c.rjust(w) for c, w in zip(row[1:], widths[1:])))
    if "time_to_peer_bleu_min" in results:
        minutes = results["time_to_peer_bleu_min"]
        reached = f"{minutes:.2f} min" if minutes is not None else "not within the run"
        print(
            f"nmt training until its test BLEU (beam 5) >= the peer's {results['peer_bleu']:.2f}: "
            f"{reached}"
        )
