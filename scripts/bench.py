"""`make bench`: how fast nmt trains and decodes the peer shape, next to the peers' figures.

Measures, in one sitting on the machine at hand (so the ratios hold even though absolute speeds
drift from run to run on shared machines):

1. the ceiling: float32 (and, where the CPU has it, bfloat16) 1024^3 matmul GFLOP/s;
2. training the ``experiment=m30k_peer`` preset, composed exactly as ``nmt-train`` composes it,
   through the library's own ``train_step``, in a child process (so its peak RSS is its own):
   target and source+target tokens/s, updates/s, and the fraction of the matmul ceiling that
   turns into useful work (analytic multiply-adds per target token, see
   ``macs_per_target_token``);
3. a learning curve: our 15-minute recipe trained for ``--decode-train-minutes`` (8), a
   checkpoint every ``--curve-every`` updates, each scored on test_2016_flickr (beam 5), giving
   ``time_to_peer_bleu_min``: the minutes until nmt reaches OpenNMT-py's 15-minute BLEU;
4. decoding test_2016_flickr with that run's last checkpoint (or ``--checkpoint``): "decoding
   only" and "whole command" speed and BLEU for greedy and beam 5, per precision and shortlist,
   next to OpenNMT-py's model timed now, in this sitting (``bench_peer.py``). No speed ratio is
   printed for a model whose BLEU is under ``--bleu-floor``.

Figures, never pass/fail: the script exits 0 unless something crashed. Results land in
bench/results.json (bench/results_cuda.json with ``--device cuda``), saved after every phase.
Without ../shared/data/multi30k/raw it falls back to the generated corpus (same model shape,
smaller vocabulary) and says so in the JSON (``"data": "generated"``).

    python scripts/bench.py                                   # the full run, about 20 minutes
    python scripts/bench.py --train-seconds 10 --decode-sentences 64 --decode-train-minutes 0.5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from bench_decode import (
    CURVE_RECIPE,
    decode_commands,
    decode_in_process,
    first_reaching,
    learning_curve,
    run_measured,
    shortlist_sizes,
    source_lines,
    train_curve_model,
    variant_name,
)
from bench_peer import peer_model, peers_dir, print_ratios, time_peer_decoding
from omegaconf import OmegaConf

from nmt.commands.cli import CONFIG_DIR
from nmt.config import Config, ModelConfig
from nmt.data.batching import Batch, collate, epoch_batches
from nmt.data.corpus import load_split
from nmt.data.prepare import PreparedCorpus, prepare
from nmt.device import Distributed, resolve_precision
from nmt.model import Seq2SeqLoss, build_model, count_parameters
from nmt.schemas import register_configs
from nmt.training.optim import LearningRate, build_optimizer
from nmt.training.run_log import RunLog
from nmt.training.train import Run
from nmt.training.update import train_step

REPO = Path(__file__).resolve().parent.parent
GEMM_N = 1024
# Multi30k train pieces per sentence, EOS included (BENCHMARKS.md), and the peers' vocabulary.
M30K_SRC_LEN, M30K_TGT_LEN, PEER_VOCAB = 15.77, 15.28, 8000
GENERATED = ["data=generated", "data.src=en", "data.tgt=de", "data.root=null"]
GENERATED += ["data.spm_type=unigram", "data.vocab_size=1000"]  # the corpus' own vocabulary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--device", choices=("cpu", "cuda"), default="cpu")
    add("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    add("--gemm-seconds", type=float, default=1.0, help="timed matmul repeats per dtype")
    add("--train-seconds", type=float, default=60.0, help="timed training window (default 60)")
    add("--warmup-steps", type=int, default=20, help="untimed updates before the window")
    add(
        "--precision",
        choices=("fp32", "bf16", "int8"),
        nargs="+",
        default=["fp32", "int8"],
        help="decode with these (fp32 always); bf16 also times bf16 training, which runs anyway "
        "where the CPU multiplies bf16 natively",
    )
    add("--checkpoint", help="decode this run dir or .pt instead of training (and no curve)")
    add("--shortlist", type=int, default=10, help="also decode with decode.shortlist=K (0: no)")
    add("--greedy-workers", type=int, default=2, help="decode.workers of greedy (default 2)")
    add("--beam-workers", type=int, default=1, help="decode.workers of beam 5 (default 1)")
    add(
        "--decode-train-minutes",
        type=float,
        default=8.0,
        help="training for the decoding model and the learning curve (default 8)",
    )
    add("--curve-every", type=int, default=150, help="updates between curve checkpoints")
    add("--bleu-floor", type=float, default=30.0, help="no speed ratio for a model below it")
    add("--peer-bleu", type=float, help="BLEU to reach when there is no peer_result.json")
    add("--skip-peer", action="store_true", help="do not time OpenNMT-py's decoding")
    add("--repeats", type=int, default=1, help="decoding timings: the median of N runs, both")
    add("--decode-sentences", type=int, default=0, help="decode the first N test lines; 0 = all")
    add("--skip-decode", action="store_true", help="measure the matmul and training only")
    add("--skip-train", action="store_true", help="no training speed (the matmul and decoding)")
    add("--data-root", default="../shared/data/multi30k/raw", help="relative to the repo root")
    add("--out", help="JSON path (default bench/results.json, bench/results_cuda.json)")
    add("--train-child", help=argparse.SUPPRESS)  # internal: the training process' JSON path
    add("--child-precision", default="fp32", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _rnn_macs(gates: int, input_dim: int, hidden: int, layers: int, directions: int) -> int:
    """Per time step: ``gates`` input and hidden matmuls of each layer and direction."""
    first = gates * (input_dim + hidden) * hidden
    upper = gates * (directions * hidden + hidden) * hidden
    return directions * (first + (layers - 1) * upper)


def _attention_macs(cfg: ModelConfig, memory: int, src_len: float) -> tuple[float, float]:
    """(per decoder step, per source token) multiply-adds of the scorer plus the context."""
    hidden, size = cfg.dec_hidden, cfg.attn_dim or cfg.dec_hidden
    context = memory * src_len  # sum_j a_j h_j
    if cfg.attention in ("bahdanau", "concat"):  # v^T tanh(W q + U k_j): W q, then v^T per j
        return hidden * size + size * src_len + context, memory * size
    if cfg.attention == "multihead":  # Q, scores and weighted V in the model size, then W^O
        return hidden * size + 2 * size * src_len + size * memory, 2 * memory * size
    projected = cfg.attention == "general" or memory != hidden  # keys projected to H
    return hidden * src_len + context, memory * hidden if projected else 0


def macs_per_target_token(
    cfg: ModelConfig, vocab: int, src_per_tgt: float, src_len: float
) -> float:
    """Multiply-adds of one forward pass per target token, counted from the model's shapes.

    Useful FLOPs per target token for training are ``6 * MACs``: 2 FLOPs per multiply-add, and
    the backward pass costs twice the forward. With E embedding, h encoder hidden per direction,
    H decoder hidden, D = 2h memory, A attention size, V vocabulary, S = ``src_len`` source
    positions per sentence, g = 3 gates (GRU) or 4 (LSTM), per target step:

    - decoder RNN: ``g * (E + H_feed + H) * H`` (Luong, H_feed = H with input feeding) or
      ``g * (E + D + H) * H`` (Bahdanau), plus ``g * 2H * H`` per extra layer;
    - Bahdanau scoring: ``H * A`` query projection and ``A * S`` for ``v^T tanh(.)``; the key
      projection ``D * A`` runs once per source token (dot-family scorers: ``H * S``);
    - context ``D * S``; combination ``(D + H) * H`` (Luong) or deep output ``(H + D + E) * H``;
    - output layer ``H * V`` (plus ``H * E`` when tied embeddings need a projection);

    and per source token the encoder, ``dirs * g * (E + h) * h`` for its first layer, plus the
    key projection: both are multiplied by ``src_per_tgt`` (source over target tokens). The
    bridge (once per sentence), embedding lookups, softmaxes and elementwise gate arithmetic are
    left out, well under 1 % here. The peer shape with Multi30k's lengths (S = 15.77, 15.28
    target tokens) gives about 7.95 M, the "about 7.9 M" of BENCHMARKS.md.
    """
    gates = 4 if cfg.rnn == "lstm" else 3
    dirs = 2 if cfg.bidirectional else 1
    memory, hidden = cfg.enc_hidden * dirs, cfg.dec_hidden
    encoder = _rnn_macs(gates, cfg.emb_dim, cfg.enc_hidden, cfg.enc_layers, dirs)
    if cfg.decoder == "luong":
        rnn_in = cfg.emb_dim + (hidden if cfg.input_feeding else 0)
        readout = (memory + hidden) * hidden
    else:
        rnn_in, readout = cfg.emb_dim + memory, (hidden + memory + cfg.emb_dim) * hidden
    decoder = _rnn_macs(gates, rnn_in, hidden, cfg.dec_layers, 1)
    per_step, per_source = _attention_macs(cfg, memory, src_len)
    output = hidden * vocab
    if cfg.tie_embeddings:  # W_out is the embedding: (E, V), after an (H, E) map when H != E
        output = cfg.emb_dim * vocab + (hidden * cfg.emb_dim if hidden != cfg.emb_dim else 0)
    return decoder + per_step + readout + output + src_per_tgt * (encoder + per_source)


def preset_overrides(args: argparse.Namespace) -> tuple[list[str], str]:
    """Hydra overrides for the peer preset on this device, and which corpus they name."""
    overrides = ["experiment=m30k_peer", f"train.device={args.device}"]
    overrides.append(f"train.threads={args.threads}")
    root = (REPO / args.data_root).resolve()
    if root.is_dir():
        return [*overrides, f"data.root={root}"], "multi30k"
    return overrides + GENERATED, "generated"


def compose_preset(overrides: list[str]) -> Config:
    """The typed config exactly as ``nmt-train <overrides>`` would compose it."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="train", overrides=overrides))


def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def gemm_gflops(dtype: torch.dtype, device: str, seconds: float) -> float:
    """GFLOP/s of ``GEMM_N``^3 matmuls (2 n^3 FLOPs each) repeated for at least ``seconds``."""
    a = torch.randn(GEMM_N, GEMM_N, device=device).to(dtype)
    b = torch.randn(GEMM_N, GEMM_N, device=device).to(dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    repeats, per_check = 0, 20 if device == "cuda" else 1
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(per_check):
            a @ b
        _sync(device)
        repeats += per_check
    return repeats * 2 * GEMM_N**3 / (time.perf_counter() - started) / 1e9


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo (Linux), or None."""
    path = Path("/proc/cpuinfo")
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.split(":", 1)[0].strip() == field:
            return line.split(":", 1)[1].strip()
    return None


def measure_gemm(device: str, seconds: float) -> dict:
    """The matmul ceiling; bf16 only where the hardware has it natively (emulation is ~10x off)."""
    fp32 = gemm_gflops(torch.float32, device, seconds)
    if device == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = bool({"avx512_bf16", "amx_bf16"} & set((_cpuinfo("flags") or "").split()))
    bf16 = gemm_gflops(torch.bfloat16, device, seconds) if native else None
    if bf16 is not None and bf16 < fp32 / 4:  # flags present but the kernels are not used
        bf16 = None
    return {"gemm_n": GEMM_N, "gemm_fp32_gflops": fp32, "gemm_bf16_gflops": bf16}


def machine_info(args: argparse.Namespace) -> dict:
    """What the figures depend on: CPU, threads, torch, the code's revision, the device."""
    cpu = _cpuinfo("model name") or platform.processor() or "unknown"
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
    return {
        "cpu": cpu,
        "gpu": gpu,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "git_rev": rev or "unknown",
        "device": args.device,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _build_run(cfg: Config, corpus: PreparedCorpus) -> Run:
    """A ``Run`` by hand, as ``nmt.training.train`` builds one, minus logging and checkpoints."""
    device = torch.device(cfg.train.device)
    model = build_model(cfg.model, len(corpus.vocabs.src), len(corpus.vocabs.tgt)).to(device)
    return Run(
        cfg,
        model,
        Seq2SeqLoss(model),
        build_optimizer(model, cfg.train),
        LearningRate(cfg.train),
        torch.amp.GradScaler(device.type, enabled=False),
        corpus,
        RunLog(Path("bench"), enabled=False),
        Distributed(),
        device,
        resolve_precision(cfg.train.precision, device),
    )


def _groups(run: Run) -> Iterator[tuple[list[Batch], int]]:
    """Update groups as training draws them (shuffled length buckets, epoch after epoch), each
    with its real source tokens (EOS included), counted before the batches leave the CPU."""
    data, split, accum = run.cfg.data, run.corpus.encoded["train"], run.cfg.train.accum_steps
    for epoch in itertools.count():
        seed = run.cfg.train.seed * 100_003 + epoch
        batches = epoch_batches(split, data.batch_tokens, data.batch_sents, seed=seed)
        for start in range(0, len(batches) - accum + 1, accum):
            group = [collate(split, indices) for indices in batches[start : start + accum]]
            yield [b.to(run.device) for b in group], sum(int(b.src_lens.sum()) for b in group)


def _update(run: Run, group: list[Batch]) -> tuple[float, int]:
    """One update through the library's own step: (loss per target token, target tokens)."""
    update = train_step(run, group)
    return update.loss, update.tokens


def time_training(cfg: Config, warmup: int, seconds: float) -> dict:
    """Train the preset for ``warmup`` untimed updates, then time at least ``seconds`` of them."""
    random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    corpus = prepare(cfg.data, [], log=lambda _: None)
    run, split = _build_run(cfg, corpus), corpus.encoded["train"]
    groups = _groups(run)
    for _ in range(warmup):
        _update(run, next(groups)[0])
    _sync(run.device)
    steps, src, tgt, loss = 0, 0, 0, 0.0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        group, group_src = next(groups)
        step_loss, tokens = _update(run, group)
        steps, src, tgt, loss = steps + 1, src + group_src, tgt + tokens, loss + step_loss * tokens
    _sync(run.device)
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "steps": steps,
        "tgt_tokens_per_s": tgt / elapsed,
        "src_tgt_tokens_per_s": (src + tgt) / elapsed,
        "steps_per_s": steps / elapsed,
        "loss": loss / max(tgt, 1),
        "src_len": sum(len(s) + 1 for s in split.src) / len(split),
        "tgt_len": sum(len(t) + 1 for t in split.tgt) / len(split),
        "tgt_vocab": len(corpus.vocabs.tgt),
        "parameters": count_parameters(run.model),
    }


def train_child(args: argparse.Namespace) -> None:
    """The training measurement's own process: compose, time, write the JSON for the parent."""
    overrides, _ = preset_overrides(args)
    cfg = compose_preset([*overrides, f"train.precision={args.child_precision}"])
    result = time_training(cfg, args.warmup_steps, args.train_seconds)
    Path(args.train_child).write_text(json.dumps(result))


def measure_training(args: argparse.Namespace, cfg: Config, ceilings: dict, precision: str) -> dict:
    """Run the training child for ``precision``; its figures, peak RSS and ceiling fraction.

    Keys are ``train_*`` for fp32 and ``train_bf16_*`` for bf16, whose fraction is of the
    bfloat16 matmul ceiling (null where the hardware has none).
    """
    out = Path("bench") / f"train_{precision}.json"
    child = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
    child += ["--train-child", str(out), "--child-precision", precision]
    print(
        f"timing {precision} training: {args.warmup_steps} warm-up updates, then "
        f"{args.train_seconds:g} s",
        flush=True,
    )
    process = run_measured(child, args.threads)
    if process.returncode != 0:
        raise RuntimeError(f"the training measurement exited with status {process.returncode}")
    figures = json.loads(out.read_text())
    macs = macs_per_target_token(
        cfg.model, figures["tgt_vocab"], figures["src_len"] / figures["tgt_len"], figures["src_len"]
    )
    ceiling = ceilings["gemm_fp32_gflops" if precision == "fp32" else "gemm_bf16_gflops"]
    useful = figures["tgt_tokens_per_s"] * 6 * macs
    figures |= {"peak_rss_mib": process.peak_rss_mib, "warmup_steps": args.warmup_steps}
    figures["flops_fraction"] = useful / (ceiling * 1e9) if ceiling else None
    prefix = "train_" if precision == "fp32" else "train_bf16_"
    shared = {
        "src_tokens_per_sentence": figures.pop("src_len"),
        "tgt_tokens_per_sentence": figures.pop("tgt_len"),
        "tgt_vocab": figures.pop("tgt_vocab"),
        "parameters": figures.pop("parameters"),
        "macs_per_target_token": macs,
    }
    return shared | {prefix + key: value for key, value in figures.items()}


# BENCHMARKS.md: OpenNMT-py 3.5.1 and JoeyNMT 2.3.0 on a 2-vCPU Xeon, OpenNMT-py on an AMD EPYC;
# their training figures only (decoding is compared with OpenNMT-py timed in the same sitting).
# Updates/s are the updates of the 15-minute budget over 900 s (start-up included).
PEERS = {
    "OpenNMT-py Xeon": [426, None, 2958, 5763, 2803 / 900, 3354],
    "JoeyNMT Xeon": [426, None, 1529, 3108, 1407 / 900, 1648],
    "OpenNMT-py EPYC": [207, 870, 1974, 3847, 1800 / 900, 3201],
}
PEER_KEYS = [
    "gemm_fp32_gflops",
    "gemm_bf16_gflops",
    "train_tgt_tokens_per_s",
    "train_src_tgt_tokens_per_s",
    "train_steps_per_s",
    "train_peak_rss_mib",
]
ROWS = [
    ("float32 matmul 1024^3, GFLOP/s", "gemm_fp32_gflops", "{:,.0f}"),
    ("bfloat16 matmul 1024^3, GFLOP/s", "gemm_bf16_gflops", "{:,.0f}"),
    ("training target tokens/s", "train_tgt_tokens_per_s", "{:,.0f}"),
    ("training source+target tokens/s", "train_src_tgt_tokens_per_s", "{:,.0f}"),
    ("updates/s (64 sentences)", "train_steps_per_s", "{:.2f}"),
    ("peak RSS training, MiB", "train_peak_rss_mib", "{:,.0f}"),
    ("useful FLOP/s / fp32 matmul ceiling", "train_flops_fraction", "{:.2f}"),
    ("bf16 training target tokens/s", "train_bf16_tgt_tokens_per_s", "{:,.0f}"),
    ("bf16 useful FLOP/s / bf16 ceiling", "train_bf16_flops_fraction", "{:.2f}"),
    ("shortlist candidates per batch, median", "decode_shortlist_candidates_median", "{:,}"),
]


def peer_figures() -> dict[str, dict]:
    """The peers' figures by key, with their ceiling fractions counted as ours are."""
    peer = ModelConfig(emb_dim=256, enc_hidden=256, dec_hidden=512)
    macs = macs_per_target_token(peer, PEER_VOCAB, M30K_SRC_LEN / M30K_TGT_LEN, M30K_SRC_LEN)
    tables = {}
    for name, values in PEERS.items():
        figures = dict(zip(PEER_KEYS, values))
        useful = figures["train_tgt_tokens_per_s"] * 6 * macs
        figures["train_flops_fraction"] = useful / (figures["gemm_fp32_gflops"] * 1e9)
        tables[name] = figures
    return tables


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def print_table(results: dict) -> None:
    """Our figures next to the peers' (measured on other machines: compare the fractions)."""
    peers = peer_figures()
    print(
        f"\nnmt {results['git_rev']} on {results['cpu']}, {results['threads']} threads, "
        f"torch {results['torch']}, {results['device']}, data {results['data']}"
    )
    if "macs_per_target_token" in results:
        macs = results["macs_per_target_token"]
        print(
            f"forward multiply-adds per target token: {macs / 1e6:.2f} M "
            f"({6 * macs / 1e6:.1f} MFLOP forward+backward)"
        )
    header = f"{'':<38}{'nmt (this machine)':>20}" + "".join(f"{n:>17}" for n in peers)
    print(header + "\n" + "-" * len(header))
    for label, key, fmt in ROWS:
        if key not in results:
            continue
        cells = [_cell(results[key], fmt)] + [_cell(p.get(key), fmt) for p in peers.values()]
        print(f"{label:<38}{cells[0]:>20}" + "".join(f"{c:>17}" for c in cells[1:]))
    fraction = results.get("train_flops_fraction")
    if fraction is not None:
        print(
            f"\nnmt turns {fraction:.2f} of this machine's float32 matmul ceiling "
            f"({results['gemm_fp32_gflops']:.0f} GFLOP/s) into useful training FLOPs; "
            "OpenNMT-py: 0.33 of 426 GFLOP/s on the Xeon, 0.45 of 207 on the AMD EPYC."
        )


def _save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def decode_variants(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(precision, shortlist) pairs to decode with: float32 first, each with and without K."""
    precisions = ["fp32", *(p for p in args.precision if p != "fp32")]
    return [(p, k) for p in precisions for k in ([0, args.shortlist] if args.shortlist else [0])]


def measure_decoding(args: argparse.Namespace, cfg: Config, overrides: list[str]) -> dict:
    """The learning curve (unless ``--checkpoint``), then our decoding and the peer's."""
    lines = source_lines(cfg, args.decode_sentences)
    references = load_split(cfg.data, cfg.data.test_sets[0]).tgt[: len(lines)]
    source = Path("bench") / f"decode_input.{cfg.data.src}"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    results: dict = {"decode_set": cfg.data.test_sets[0], "decode_sentences": len(lines)}
    peers = peers_dir()
    peer, peer_checkpoint, why = peer_model(peers)
    if peer is not None:
        results |= {"peer_bleu": peer["bleu_beam5"], "peer_result": peer}
    elif args.peer_bleu is None:
        print(f"note: {why}; or give --peer-bleu", flush=True)
    if args.peer_bleu is not None:
        results["peer_bleu"] = args.peer_bleu
    checkpoint, recipe = args.checkpoint, "given with --checkpoint"
    if checkpoint is None:
        minutes = args.decode_train_minutes
        run_dir = train_curve_model(overrides, minutes, args.curve_every, args.threads)
        print("scoring the learning curve (beam 5, test set)", flush=True)
        curve = learning_curve(run_dir, lines, references)
        results["learning_curve"] = curve
        if "peer_bleu" in results:
            results["time_to_peer_bleu_min"] = first_reaching(curve, results["peer_bleu"])
        checkpoint, recipe = curve[-1]["checkpoint"], f"{CURVE_RECIPE}, train.max_time={minutes:g}m"
    print(
        f"decoding {len(lines):,} sentences of {cfg.data.test_sets[0]} ({checkpoint})", flush=True
    )
    variants = decode_variants(args)
    workers = {"greedy": args.greedy_workers, "beam5": args.beam_workers}
    results |= decode_in_process(
        checkpoint, lines, args.device, variants, references, args.repeats, workers
    )
    results |= {"decode_repeats": args.repeats, "decode_workers": workers}
    results["decode_model"] = {
        "path": str(checkpoint),
        "recipe": recipe,
        "bleu": results["decode_fp32_beam5_bleu"],
    }
    results |= {"decode_shortlist": args.shortlist, "decode_bleu_floor": args.bleu_floor}
    if args.shortlist:
        results |= shortlist_sizes(checkpoint, lines, args.shortlist)
    for variant in dict.fromkeys([variants[0], variants[-1]]):
        results |= decode_commands(
            checkpoint,
            source,
            len(lines),
            args.threads,
            args.device,
            variant,
            args.repeats,
            workers,
        )
    if peer_checkpoint is not None and not args.skip_peer and args.device == "cpu":
        print(f"timing OpenNMT-py's decoding ({peer_checkpoint})", flush=True)
        results["peer_checkpoint"] = str(peer_checkpoint)
        results |= time_peer_decoding(
            peers, peer_checkpoint, source, references, args.threads, args.repeats
        )
    return results


def main() -> None:
    args = parse_args()
    for name in ("out", "checkpoint"):  # the user's paths are relative to where they ran us
        if getattr(args, name):
            setattr(args, name, str(Path(getattr(args, name)).resolve()))
    os.chdir(REPO)  # the preset's paths, bench/ and data/cache are relative to the repo root
    torch.set_num_threads(args.threads)
    if args.train_child:
        train_child(args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda, but torch sees no CUDA device")
    Path("bench").mkdir(exist_ok=True)  # the children's JSON, the decoding inputs and outputs
    out = Path(args.out or f"bench/results{'_cuda' if args.device == 'cuda' else ''}.json")
    overrides, data = preset_overrides(args)
    cfg = compose_preset(overrides)
    results = machine_info(args) | {"data": data, "overrides": overrides}
    results |= measure_gemm(args.device, args.gemm_seconds)
    _save(results, out)
    # bf16 training is a row of its own where the hardware multiplies bf16 natively
    bf16 = "bf16" in args.precision or results["gemm_bf16_gflops"] is not None
    for precision in ["fp32", "bf16"] if bf16 else ["fp32"]:
        if args.skip_train:
            break
        results |= measure_training(args, cfg, results, precision)
        _save(results, out)
    if not args.skip_decode:
        results |= measure_decoding(args, cfg, overrides)
        _save(results, out)
    print_table(results)
    if not args.skip_decode:
        variants = [variant_name(*variant) for variant in decode_variants(args)]
        print_ratios(results, variants, args.bleu_floor)
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
