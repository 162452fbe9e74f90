"""Choosing the device and the numeric precision, and naming the hardware for model cards."""

from __future__ import annotations

import platform

import torch

from artgan import infer
from artgan.errors import ArtganError


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``artgan.infer.pick_device``, except that under torchrun each process gets its own
    GPU (``cuda`` means ``cuda:LOCAL_RANK``), made the current one."""
    device = infer.pick_device(name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def pick_precision(name: str, device: torch.device) -> str:
    """Resolve ``auto`` to fp32/bf16 for ``device`` and refuse what it cannot run."""
    if name == "auto":  # bf16 where inference would use it too: where it is computed natively
        return "bf16" if infer.autocast_dtype(device) == torch.bfloat16 else "fp32"
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
