"""Choosing the device and the numeric precision, and naming the hardware for model cards."""

from __future__ import annotations

import platform
from functools import cache

import torch

from artgan.errors import ArtganError


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA, then MPS, then CPU; under torchrun each process gets its own GPU."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArtganError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArtganError(f"device {name!r} asked for, but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ArtganError("device 'mps' asked for, but MPS is not available")
    return device


@cache
def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AMX or AVX512-BF16), where autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def pick_precision(name: str, device: torch.device) -> str:
    """Resolve ``auto`` to fp32/bf16 for ``device`` and refuse what it cannot run."""
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise ArtganError(f"--precision fp16 needs a CUDA device (training on {device.type})")
    return name


def hardware_name(device: torch.device) -> str:
    """E.g. "NVIDIA H100 80GB HBM3" or "Intel(R) Xeon(R) ... (2 threads)"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"{_cpu_model()} ({torch.get_num_threads()} threads)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"
