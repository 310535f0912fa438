"""The inference layer: a checkpoint loaded into a translator, batched search, forced decoding.

Validation, nmt-translate, nmt-evaluate and the scripts all decode through here: one batch loop
(``search_split``) for free decoding, and one teacher-forced pass (``force_decode``) for the
attention of given translations (alignments, AER, the heatmaps of training). No command module is
imported from here or below.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from nmt.checkpoint import CheckpointError, load_checkpoint, vocabularies_from
from nmt.config import DataConfig, DecodeConfig, ModelConfig
from nmt.data.batching import EncodedSplit, collate, epoch_batches
from nmt.data.shortlist import Shortlist
from nmt.data.tokenizer import Vocabularies
from nmt.device import Distributed, autocast, pick_device
from nmt.inference.beam import beam_search
from nmt.inference.ensemble import Ensemble
from nmt.inference.int8 import int8_model
from nmt.inference.search import Hypothesis, greedy
from nmt.inference.shortlist import shortlisted
from nmt.inference.workers import decode_in_workers
from nmt.model import Seq2Seq, build_model
from nmt.model.decoder import DecoderLoss, DecoderOutput

log = logging.getLogger("nmt")


@dataclass
class Translator:
    """A model ready to translate, in eval mode on its device, with what it was trained with.

    Attributes:
        data: the checkpoint's corpus settings (languages, test sets, ``max_tokens``).
        decode: the search its training validated with (beam, penalties, precision, batch size).
        path: the checkpoint file it was loaded from (an ensemble's first).
        config: the checkpoint's whole resolved configuration, as saved.
        paths: every checkpoint file: one, or an ensemble's members.
    """

    model: Seq2Seq | Ensemble
    vocabs: Vocabularies
    data: DataConfig
    decode: DecodeConfig
    path: str
    config: dict = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    shortlist: Shortlist | None = None  # the training split's candidates (decode.shortlist)

    def __post_init__(self) -> None:
        self.paths = self.paths or [self.path]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_translator(location: str | Sequence[str] | None, device: str = "cpu") -> Translator:
    """Rebuild the model of a checkpoint (file or run directory) in eval mode; several
    checkpoints of one vocabulary make an ``Ensemble``.

    ``device`` is ``decode.device``: auto (CUDA when present), cpu or cuda.
    """
    if location is None or (not isinstance(location, str) and not location):
        raise CheckpointError("no checkpoint given: add checkpoint=<run directory or .pt file>")
    if not isinstance(location, str) and len(location) > 1:
        return _load_ensemble(list(location), device)
    if not isinstance(location, str):
        location = location[0]
    payload = load_checkpoint(location)
    try:
        model_cfg = ModelConfig(**payload["config"]["model"])
        data_cfg = DataConfig(**payload["config"]["data"])
        decode_cfg = DecodeConfig(**payload["config"]["decode"])
        vocabs = vocabularies_from(payload)
        model = build_model(model_cfg, len(vocabs.src), len(vocabs.tgt))
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(
            f"{payload['path']}: model, configuration and vocabulary do not "
            f"match ({str(error).splitlines()[0]})"
        ) from None
    model = model.to(pick_device(device, Distributed(), "decode.device")).eval()
    shortlist = Shortlist.of(payload["shortlist"]) if "shortlist" in payload else None
    config = payload["config"]
    return Translator(model, vocabs, data_cfg, decode_cfg, payload["path"], config, [], shortlist)


def _load_ensemble(locations: list[str], device: str) -> Translator:
    """One translator over several checkpoints; their vocabularies must be the same."""
    members = [load_translator(location, device) for location in locations]
    first = members[0]
    for other in members[1:]:
        ours = (first.vocabs.src.model_proto, first.vocabs.tgt.model_proto)
        if (other.vocabs.src.model_proto, other.vocabs.tgt.model_proto) != ours:
            raise CheckpointError(
                f"cannot ensemble {first.path} and {other.path}: their vocabularies differ"
            )
    model = Ensemble([member.model for member in members]).eval()
    return replace(first, model=model, paths=[member.path for member in members])


def search_settings(
    translator: Translator, requested: DecodeConfig, given: Collection[str] | None
) -> DecodeConfig:
    """The checkpoint's search settings, with the options named in ``given`` taken from
    ``requested`` (None: all of them). ``device`` is always the requested one: where to search
    is a property of this machine, not of the run."""
    if given is None:
        return requested
    unknown = set(given) - set(asdict(requested))
    if unknown:
        raise ValueError(f"unknown decode option(s): {', '.join(sorted(unknown))}")
    chosen = {name: getattr(requested, name) for name in {*given, "device"}}
    return replace(translator.decode, **chosen)


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
    model: Seq2Seq,
    split: EncodedSplit,
    cfg: DecodeConfig,
    device: torch.device,
    shortlist: Shortlist | None = None,
) -> list[list[Hypothesis]]:
    """The n-best hypotheses of every source sentence of ``split``, in the split's order.

    The one batch loop of validation, nmt-translate and nmt-evaluate: sentences are decoded in
    length-sorted batches of ``cfg.batch_size``, greedily when ``beam_size`` is 1, with
    bfloat16 matmuls when ``cfg.precision`` is bf16 (scores are still summed in float32), the
    decoder's matmuls in int8 when it is int8 (``int8.py``), with ``cfg.shortlist`` the
    output layer restricted to each batch's candidates from ``shortlist``, and on a CPU with
    ``cfg.workers`` > 1 the batches shared among that many forked processes (``workers.py``).
    """
    results: list[list[Hypothesis]] = [[] for _ in range(len(split))]
    if cfg.precision == "int8":
        if device.type != "cpu":
            raise ValueError("decode.precision=int8 is CPU decoding: use decode.device=cpu")
        model = int8_model(model)
    matmuls = "bf16" if cfg.precision == "bf16" else "fp32"
    if cfg.shortlist and shortlist is None:
        raise ValueError(
            "decode.shortlist needs the checkpoint's vocabulary shortlist, and this one has none "
            "(trained before shortlists existed): use decode.shortlist=0"
        )
    if cfg.shortlist and cfg.no_repeat_ngram:
        raise ValueError("decode.shortlist and decode.no_repeat_ngram cannot be combined yet")

    def search(indices: np.ndarray) -> list[list[Hypothesis]]:
        batch = collate(split, indices)
        candidates = None
        if cfg.shortlist:
            ids = shortlist.candidates(batch.src.numpy(), cfg.shortlist, cfg.shortlist_frequent)
            candidates = torch.from_numpy(ids).to(device)
        batch = batch.to(device)
        with autocast(device, matmuls), shortlisted(model, candidates):
            if cfg.beam_size == 1:
                found = greedy(
                    model,
                    batch.src,
                    batch.src_lens,
                    cfg.max_len_ratio,
                    cfg.no_repeat_ngram,
                    vocabulary=candidates,
                )
                return [[hypothesis] for hypothesis in found]
            return beam_search(model, batch.src, batch.src_lens, cfg, vocabulary=candidates)

    batches = list(epoch_batches(split, 10**9, cfg.batch_size, seed=None))
    parallel = cfg.workers > 1 and device.type == "cpu" and len(batches) > 1
    searched = decode_in_workers(search, batches, cfg.workers) if parallel else map(search, batches)
    for indices, nbest in zip(batches, searched):
        for index, hypotheses in zip(indices, nbest):
            results[index] = hypotheses
    return results


@torch.no_grad()
def translate_lines(
    translator: Translator, lines: Sequence[str], decode: DecodeConfig, max_tokens: int
) -> list[list[Hypothesis]]:
    """n-best hypotheses for every line, in input order; empty lines get no hypothesis."""
    split = encode_sources(lines, translator.vocabs, max_tokens)
    real = [i for i, line in enumerate(lines) if line.strip()]
    results: list[list[Hypothesis]] = [[] for _ in lines]
    found = search_split(
        translator.model, split.subset(real), decode, translator.device, translator.shortlist
    )
    for index, hypotheses in zip(real, found):
        results[index] = hypotheses
    return results


@dataclass
class ForcedAttention:
    """The teacher-forced attention of one sentence pair, EOS row and column included.

    Attributes:
        src_labels, tgt_labels: the pieces of each side, then ``</s>``.
        attn: (T,S) float32 weights; context: (T,D); head_attn: (h,T,S) for multihead, else None.
        top_ids, top_probs: (T,k) the k most probable tokens at each step and their
            probabilities, when asked for (``top_k``), else None.
    """

    src_labels: list[str]
    tgt_labels: list[str]
    attn: np.ndarray
    context: np.ndarray
    head_attn: np.ndarray | None = None
    top_ids: np.ndarray | None = None
    top_probs: np.ndarray | None = None


@torch.no_grad()
def force_decode(
    model: Seq2Seq,
    vocabs: Vocabularies,
    split: EncodedSplit,
    indices: Sequence[int],
    batch_size: int = 64,
    top_k: int = 0,
) -> list[ForcedAttention]:
    """Attention and context vectors of ``model`` reading ``split[indices]``'s own translations.

    Runs in eval mode on the model's device, in length-sorted batches; results in ``indices``'
    order. Alignments (AER), the heatmaps of training and the explorer all come from here;
    ``top_k`` > 0 also keeps the k most probable tokens of every step (the explorer's
    alternatives).
    """
    device = next(model.parameters()).device
    subset = split.subset(indices)
    found: list[ForcedAttention | None] = [None] * len(subset)
    was_training = model.training
    model.eval()
    for batch_indices in epoch_batches(subset, 10**9, batch_size, seed=None):
        batch = collate(subset, batch_indices).to(device)
        out = model(batch.src, batch.src_lens, batch.tgt_in)
        for b, i in enumerate(batch_indices):
            found[i] = forced_attention(out, b, subset.src[i], subset.tgt[i], vocabs, top_k)
    model.train(was_training)
    return found


def forced_attention(
    out: DecoderOutput | DecoderLoss,
    b: int,
    src: list[int],
    tgt: list[int],
    vocabs: Vocabularies,
    top_k: int = 0,
) -> ForcedAttention:
    """Row ``b`` of a teacher-forced batch's outputs, cropped to its sentence pair ``src``/``tgt``
    (ids without EOS); ``top_k`` needs logits (a ``DecoderOutput``)."""
    s, t = len(src) + 1, len(tgt) + 1
    heads = None if out.head_attn is None else out.head_attn[b, :t, :, :s].permute(1, 0, 2)
    top = out.logits[b, :t].float().softmax(-1).topk(top_k) if top_k > 0 else None
    return ForcedAttention(
        vocabs.src.pieces(src) + ["</s>"],
        vocabs.tgt.pieces(tgt) + ["</s>"],
        out.attn[b, :t, :s].float().cpu().numpy(),
        out.context[b, :t].float().cpu().numpy(),
        None if heads is None else heads.float().cpu().numpy(),
        None if top is None else top.indices.cpu().numpy(),
        None if top is None else top.values.cpu().numpy(),
    )
