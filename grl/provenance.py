"""What a number depends on besides the code: the machine, the libraries, the thread count.

Every result.json carries :func:`machine_info`, and every report prints it (README, "What is
identical where"): float32 results move in their last digits with the CPU's instruction set
(oneDNN / MKL pick kernels by it) and with the number of threads.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

# The instruction-set features that change which kernels oneDNN / MKL / ATen run.
ISA_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """The ISA_FEATURES this CPU has (Linux /proc/cpuinfo; empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [f for f in ISA_FEATURES if f in present]
    except OSError:
        pass
    return []


def machine_info() -> dict:
    """JSON-ready description of this process's machine and numerical libraries."""
    import os

    import numpy
    import torch

    info = {
        "cpu": cpu_model(),
        "isa": cpu_flags(),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    env = {
        k: os.environ[k]
        for k in ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS")
        if k in os.environ
    }
    if env:
        info["environment"] = env
    return info
