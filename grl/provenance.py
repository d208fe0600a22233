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


def git_commit(short: bool = False) -> str:
    """HEAD of the checkout holding this package, or 'unknown' (no git, not a checkout)."""
    import subprocess

    args = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(
            args, cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device) -> str:
    """The device a run trained on, as its result records it."""
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def dataset_summary(dataset) -> dict:
    """The dataset's JSON-friendly summary (VideoReIDDataset.summary_dict, else counts per subset)."""
    if hasattr(dataset, "summary_dict"):
        return dataset.summary_dict()
    out: dict = {"name": dataset.name, "root": str(dataset.root), "split": dataset.split}
    for subset in ("train", "query", "gallery"):
        tracklets = getattr(dataset, subset)
        out[f"{subset}_tracklets"] = len(tracklets)
        out[f"{subset}_ids"] = len({t.pid for t in tracklets})
        out[f"{subset}_frames"] = sum(len(t.frames) for t in tracklets)
    return out
