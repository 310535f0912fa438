"""Where training runs: the device, mixed precision, and data parallelism under ``torchrun``.

A plain ``nmt-train`` is one process and the DDP calls here are no-ops. Under torchrun each rank
trains on its own slice of every epoch's batches and DDP averages the gradients; all ranks
validate (cheap, and it keeps their stop decisions identical) but only rank 0 writes.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to call for training: DDP around ``model`` when several ranks train.
        Gradients are views into DDP's all-reduce buckets, so a rank holds them once, not twice."""
        if not self.active:
            return model
        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=device_ids, gradient_as_bucket_view=True
        )

    def barrier(self) -> None:
        """Wait until every rank gets here (no-op in a single process)."""
        if self.active:
            torch_dist.barrier()

    def close(self) -> None:
        if self.active and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def setup_distributed(device: str) -> Distributed:
    """Join the process group that torchrun describes in the environment, if any.

    NCCL on CUDA, gloo on the CPU (``train.device=cpu`` forces gloo even where CUDA exists).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    use_cuda = device != "cpu" and torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    torch_dist.init_process_group("nccl" if use_cuda else "gloo")
    return Distributed(torch_dist.get_rank(), world, local_rank)


def training_device(device: str, precision: str) -> tuple[Distributed, torch.device, str]:
    """``train.device`` and ``train.precision`` resolved for this process: its DDP rank (joining
    torchrun's process group, if any), its device, and a precision without ``auto``."""
    dist = setup_distributed(device)
    chosen = pick_device(device, dist)
    return dist, chosen, resolve_precision(precision, chosen)


def all_agree(dist: Distributed, flag: bool) -> bool:
    """True when ``flag`` is true on every rank (so all ranks stop, or skip, together)."""
    return _all_reduce(dist, 1.0 if flag else 0.0, "min") > 0.5


def all_max(dist: Distributed, value: float) -> float:
    """The largest ``value`` over all ranks (so clock readings agree everywhere)."""
    return _all_reduce(dist, value, "max")


def gather_objects(dist: Distributed, value: object) -> list:
    """``value`` of every rank, in rank order (on every rank); ``[value]`` in one process."""
    if not dist.active:
        return [value]
    gathered: list = [None] * dist.world
    torch_dist.all_gather_object(gathered, value)
    return gathered


def all_sum(dist: Distributed, value: float) -> float:
    """The sum of ``value`` over all ranks (token counts, losses)."""
    return _all_reduce(dist, value, "sum")


def _all_reduce(dist: Distributed, value: float, op: str) -> float:
    """``value`` reduced over all ranks by ``min``, ``max`` or ``sum``; itself in one process."""
    if not dist.active:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if torch_dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    ops = {
        "min": torch_dist.ReduceOp.MIN,
        "max": torch_dist.ReduceOp.MAX,
        "sum": torch_dist.ReduceOp.SUM,
    }
    torch_dist.all_reduce(tensor, op=ops[op])
    return float(tensor.item())


def pick_device(name: str, dist: Distributed, option: str = "train.device") -> torch.device:
    """``train.device`` or ``decode.device``: auto (CUDA when present), cpu, or this rank's GPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{option}=cuda but no CUDA device is available")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", dist.local_rank)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``); empty without /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively, so bf16 autocast pays off.

    On CPUs without AVX-512 BF16, AMX or Arm BF16, PyTorch emulates bfloat16 matmuls several
    times slower than float32; on CUDA, Ampere and newer have bf16 tensor cores.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & cpu_flags())


def resolve_precision(precision: str, device: torch.device, option: str = "train.precision") -> str:
    """``auto`` becomes bf16 where ``device`` does bf16 matmuls natively, else fp32."""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"{option}=fp16 needs CUDA; use bf16 (or auto) on the CPU")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """Mixed precision for a precision ``resolve_precision`` returned: fp32, bf16 or fp16."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
