"""What artgan asks of the CPU without importing torch: oneDNN's instruction-set limit and
how many threads a network runs on.

Kept apart from ``artgan.infer`` so that a run on the OpenVINO backend can answer both
without loading torch (1.2 s of every such process).
"""

from __future__ import annotations

import os
import sys
from functools import cache

# oneDNN's instruction-set limits below AVX512_CORE_BF16, the first with bfloat16 arithmetic
ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                     "AVX512_CORE_VNNI"}


def cpu_isa_limit() -> str | None:
    """The instruction set oneDNN (inside torch and OpenVINO) is limited to, if any:
    ``ONEDNN_MAX_CPU_ISA``, or its old name ``DNNL_MAX_CPU_ISA``."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return limit.strip().upper() if limit else None


def limited_below_bf16() -> bool:
    """Whether a ``cpu_isa_limit`` keeps oneDNN from bfloat16 arithmetic."""
    return cpu_isa_limit() in ISAS_WITHOUT_BF16


def has_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX) and oneDNN, inside torch
    and OpenVINO, may use it (no ``cpu_isa_limit`` below it, where OpenVINO cannot compile for
    bfloat16 at all). Read from the kernel's CPU flags on Linux, so that no torch is needed;
    elsewhere torch is asked. (OpenVINO's own capability list also names bf16 on AVX2-VNNI-2
    CPUs, where torch stays in float32: the two backends would then drift apart.)"""
    if limited_below_bf16():
        return False
    flags = _linux_cpu_flags()
    if flags is not None:
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@cache
def _linux_cpu_flags() -> frozenset[str] | None:
    """The flags of the first CPU in ``/proc/cpuinfo``, read once (``has_native_bf16`` is
    asked per tile and per window; the file's size grows with the core count); None where
    there is no such file."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def threads() -> int:
    """Threads for a network run outside torch: torch's own count once torch is loaded (a
    notebook may have set it), else ``OMP_NUM_THREADS``, else 0, which lets the runtime take
    one per physical core, as torch does by default."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0
