"""Device and precision choices: ``train.precision=auto`` and the CPU flags it reads."""

from __future__ import annotations

import pytest
import torch

from nmt import device as device_module
from nmt.device import cpu_flags, resolve_precision

CPU = torch.device("cpu")
X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {extra}\nbugs\t\t: spectre\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd {extra}\nCPU part\t: 0xd4f\n"


def test_cpu_flags_reads_x86_and_arm_cpuinfo(tmp_path):
    x86, arm = tmp_path / "x86", tmp_path / "arm"
    x86.write_text(X86.format(extra="avx512_bf16 amx_bf16"))
    arm.write_text(ARM.format(extra="bf16 sve"))
    assert cpu_flags(x86) == {"fpu", "sse2", "avx2", "avx512_bf16", "amx_bf16"}
    assert cpu_flags(arm) == {"fp", "asimd", "bf16", "sve"}
    assert cpu_flags(tmp_path / "missing") == set()  # macOS, Windows: no /proc/cpuinfo


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "avx512f"}, "fp32"),  # AVX-512 without BF16: bf16 matmuls are emulated
        ({"avx512f", "avx512_bf16"}, "bf16"),
        ({"amx_tile", "amx_bf16"}, "bf16"),
        ({"asimd", "bf16"}, "bf16"),  # Arm (Graviton 3, Apple M2 under Linux)
        (set(), "fp32"),
    ],
)
def test_auto_precision_picks_bf16_only_with_native_bf16_matmuls(monkeypatch, flags, expected):
    monkeypatch.setattr(device_module, "cpu_flags", lambda: flags)
    assert resolve_precision("auto", CPU) == expected


def test_explicit_precisions_are_kept_and_fp16_needs_cuda():
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"  # the user asked: emulated or not
    with pytest.raises(ValueError, match="train.precision=fp16 needs CUDA"):
        resolve_precision("fp16", CPU)
