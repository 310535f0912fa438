"""`make bench-scale`: nmt on corpora of millions of pairs, the way a user runs it.

Builds an N-pair corpus as plain files (Multi30k's training pairs repeated when
``../shared/data/multi30k/raw`` exists, else the generated corpus repeated), then runs under
``/usr/bin/time -v``, each command a process of its own as a user types it:

1. cold ``nmt-prepare`` (empty cache): seconds and peak RSS;
2. ``nmt-train`` for 200 updates on the cached corpus: seconds, peak RSS, target tokens/s;
3. a second ``nmt-train`` with ``train.max_steps=1``: seconds to the first finished update
   (the run's own log line) and for the whole process, peak RSS.

and the floor the prepare target is measured against: SentencePiece alone encoding the same
lines on both cores. Figures only; results in bench/scale.json.

    python scripts/bench_scale.py --pairs 1000000 4000000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MULTI30K = REPO.parent / "shared" / "data" / "multi30k" / "raw"


def read(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def seed_corpus() -> tuple[dict[str, list[str]], str]:
    """Training, validation and test pairs to repeat: Multi30k de-en, or the generated corpus."""
    if MULTI30K.is_dir():
        splits = {"train": "train", "val": "val", "test": "test_2016_flickr"}
        found = {
            f"{name}.{lang}": read(MULTI30K / f"{stem}.{lang}.gz")
            for name, stem in splits.items()
            for lang in ("de", "en")
        }
        return found, "multi30k (de-en)"
    from nmt.config import DataConfig
    from nmt.data.corpus import generated_root

    root = generated_root(DataConfig(cache_dir=str(REPO / "bench" / "scale" / "cache")))
    found = {}
    for name, stem in (("train", "train"), ("val", "valid"), ("test", "test")):
        for lang, other in (("de", "de"), ("en", "en")):
            found[f"{name}.{lang}"] = read(root / f"{stem}.{other}")
    return found, "generated (de-en)"


def build(directory: Path, pairs: int, seed: dict[str, list[str]]) -> None:
    """``train.{de,en}`` of ``pairs`` lines (the seed's training pairs repeated), val, test."""
    directory.mkdir(parents=True, exist_ok=True)
    for lang in ("de", "en"):
        lines = seed[f"train.{lang}"]
        text = "\n".join(lines) + "\n"
        whole, rest = divmod(pairs, len(lines))
        with open(directory / f"train.{lang}", "w", encoding="utf-8") as handle:
            for _ in range(whole):
                handle.write(text)
            handle.write("".join(line + "\n" for line in lines[:rest]))
        for name in ("val", "test"):
            (directory / f"{name}.{lang}").write_text("\n".join(seed[f"{name}.{lang}"]) + "\n")


def timed(command: list[str], log: Path) -> dict:
    """Run ``command`` under /usr/bin/time -v; wall seconds, peak RSS and the output."""
    started = time.time()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=REPO
    )
    log.write_text(done.stdout + done.stderr)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    return {
        "seconds": round(time.time() - started, 1),
        "peak_rss_mib": round(rss / 1024),
        "log": done.stdout + done.stderr,
    }


def tree_memory(command: list[str], log: Path, corpus: Path) -> tuple[int, int]:
    """Peak total memory (MiB) of a process and all its descendants, summed as PSS: pages
    several processes map (the binarized corpus in the page cache, shared libraries) count once
    overall, split between them; and the part of it that maps files under ``corpus``. Sampled
    every 0.2 s."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        peak = peak_corpus = 0
        while process.poll() is None:
            sizes = [_pss_kib(pid, str(corpus)) for pid in _tree(process.pid)]
            peak = max(peak, sum(total for total, _ in sizes))
            peak_corpus = max(peak_corpus, sum(mapped for _, mapped in sizes))
            time.sleep(0.2)
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}); see {log}")
    return round(peak / 1024), round(peak_corpus / 1024)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(status.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _pss_kib(pid: int, under: str) -> tuple[int, int]:
    """A process' PSS in KiB, and the part of it mapping files whose path starts with ``under``."""
    total = mapped = 0
    inside = False
    try:
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                inside = len(fields) >= 6 and fields[5].startswith(under)
            elif fields and fields[0] == "Pss:":
                total += int(fields[1])
                mapped += int(fields[1]) if inside else 0
    except OSError:
        pass
    return total, mapped


def first_update_seconds(result: dict) -> float | None:
    found = re.search(r"first update done ([\d.]+) s after start", result["log"])
    return float(found[1]) if found else None


def tokens_per_second(run: Path) -> float | None:
    """The median of the run's logged training speed (target tokens/s over each 50 updates)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    if "train/tgt_tokens_per_s" not in events.Tags()["scalars"]:
        return None
    return round(statistics.median(e.value for e in events.Scalars("train/tgt_tokens_per_s")))


def spm_floor(directory: Path, cache: Path) -> float:
    """Seconds SentencePiece alone takes to encode both sides with every core (the model the
    prepare run trained), the floor a streamed prepare is compared with."""
    import sentencepiece as spm

    model = next((cache / "spm").glob("*/joint.model"))
    processor = spm.SentencePieceProcessor(model_file=str(model))
    started = time.perf_counter()
    for lang in ("de", "en"):
        with open(directory / f"train.{lang}", encoding="utf-8") as handle:
            while lines := handle.readlines(1 << 24):
                processor.encode(lines, num_threads=os.cpu_count() or 1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--workdir", default=str(REPO / "bench" / "scale"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--ranks",
        type=int,
        default=0,
        help="also measure a gloo run of this many ranks (largest size)",
    )
    args = parser.parse_args()
    seed, origin = seed_corpus()
    work, results = Path(args.workdir), {"corpus": origin, "cpu": _cpu(), "sizes": {}}
    for pairs in args.pairs:
        directory, cache = work / f"corpus-{pairs}", work / f"cache-{pairs}"
        shutil.rmtree(cache, ignore_errors=True)
        build(directory, pairs, seed)
        data = [
            "data=files", f"data.root={directory}", "data.src=de", "data.tgt=en",
            "data.test_sets=[test]", f"data.cache_dir={cache}",
        ]  # fmt: skip
        train = [*data, "train.val_every=100000", "train.val_sentences=0", "train.progress=true"]
        prepare = timed(["nmt-prepare", *data], work / f"prepare-{pairs}.log")
        floor = spm_floor(directory, cache)
        run = work / f"run-{pairs}"
        shutil.rmtree(run, ignore_errors=True)
        trained = timed(
            ["nmt-train", *train, f"train.max_steps={args.steps}", f"hydra.run.dir={run}"],
            work / f"train-{pairs}.log",
        )
        speed = tokens_per_second(run)
        shutil.rmtree(run, ignore_errors=True)
        again = timed(
            ["nmt-train", *train, "train.max_steps=1", f"hydra.run.dir={run}"],
            work / f"again-{pairs}.log",
        )
        results["sizes"][str(pairs)] = row = {
            "prepare_s": prepare["seconds"],
            "prepare_peak_rss_mib": prepare["peak_rss_mib"],
            "spm_encode_floor_s": round(floor, 1),
            "train_s": trained["seconds"],
            "train_peak_rss_mib": trained["peak_rss_mib"],
            "train_tgt_tokens_per_s": speed,
            "second_run_first_update_s": first_update_seconds(again),
            "second_run_s": again["seconds"],
            "second_run_peak_rss_mib": again["peak_rss_mib"],
        }
        print(json.dumps({pairs: row}), flush=True)
    if args.ranks > 1:
        results["ranks"] = compare_ranks(args.ranks, train, work, args.pairs[-1])
        print(json.dumps(results["ranks"]), flush=True)
    (work / "scale.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {work / 'scale.json'}")


def compare_ranks(ranks: int, train: list[str], work: Path, pairs: int) -> dict:
    """Peak total memory of ``ranks`` gloo ranks against one process, 20 updates each on the
    cached corpus, and the part of it that is the mapped corpus: every rank maps the same
    files, so that part should not grow with the ranks."""
    memory = {}
    for world in (1, ranks):
        run = work / f"ranks-{world}"
        shutil.rmtree(run, ignore_errors=True)
        launcher = ["python", "-m", "torch.distributed.run", f"--nproc_per_node={world}"]
        command = [*launcher, "-m", "nmt", *train, "train.max_steps=20", f"hydra.run.dir={run}"]
        memory[world] = tree_memory(command, work / f"ranks-{world}.log", work / f"cache-{pairs}")
    return {
        "pairs": pairs,
        "one_rank_pss_mib": memory[1][0],
        f"{ranks}_ranks_pss_mib": memory[ranks][0],
        "ratio": round(memory[ranks][0] / memory[1][0], 2),
        "one_rank_corpus_pss_mib": memory[1][1],
        f"{ranks}_ranks_corpus_pss_mib": memory[ranks][1],
    }


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
