"""Small helpers shared by the package: atomic writes, setting bad files aside, seeding, device choice."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _umask_mode() -> int:
    # mkstemp creates 0600 files; published results should get the usual 0666 & ~umask.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _umask_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, _umask_mode())
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_layers_by_name(module: torch.nn.Module, seed: int, *, prefix: str = "", skip: tuple[str, ...] = ()) -> int:
    """Re-initialise every layer of ``module`` from a random stream of its own: ``(seed, qualified name)``.

    Common random numbers for ablations: a layer that two arms share (say ``pooling.query.0``) starts from
    the same weights in both, however many other layers either arm builds before it. Layers under a name in
    ``skip`` (the pretrained backbone) are left alone. Returns how many layers were reset. The global RNG is
    left as it was.
    """
    import zlib

    count = 0
    with torch.random.fork_rng(devices=[]):
        for name, layer in module.named_modules():
            full = f"{prefix}{name}"
            if any(full == s or full.startswith(s + ".") for s in skip):
                continue
            if callable(getattr(layer, "reset_parameters", None)):  # Linear, ConvNd, BatchNorm: torch's own init
                torch.manual_seed((int(seed) * 1_000_003 + zlib.crc32(full.encode())) % 2**63)
                layer.reset_parameters()
                count += 1
    return count


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {name!r} was asked for but CUDA is not available on this machine; use device='cpu' or 'auto'"
        )
    return device


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_allocator_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the system.

    A training step allocates and frees activations of tens of MB. glibc serves every block above its
    mmap threshold (at most 32 MB) with a fresh mmap and unmaps it on free, so each step page-faults and
    zero-fills all of them again: at 256x128 a ResNet-50 step took 1.5-2.4 M minor page faults and 4-8 s
    of system time out of 14 s (2 threads, README "Benchmarks"). Served from a heap that is never
    trimmed, the step took 10 s. Only where memory comes from changes, not a single number computed.
    Process-wide and idempotent. Off glibc (macOS, musl), or with GRL_KEEP_FREED_MEMORY=0, it does
    nothing and returns False; returns True when the setting is in force.
    """
    global _allocator_kept
    if _allocator_kept is None:
        _allocator_kept = False
        if os.environ.get("GRL_KEEP_FREED_MEMORY", "1") != "0" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(None)
            # mallopt returns 1 on success. No block is mmapped, so every freed one goes back to the heap,
            # and a trim threshold of -1 never shrinks the heap (mallopt(3)).
            _allocator_kept = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
    return _allocator_kept


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block with ``threads`` torch threads (0: leave the setting alone), then restore it.

    A fixed count matters for what is compared across machines: reductions split over threads add
    in a thread-count-dependent order."""
    if threads <= 0:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def set_aside(path: str | os.PathLike, reason: str) -> Path:
    """Rename an unreadable or inconsistent artefact to ``<name>.bad-<time>`` (never delete it) and say so
    on stderr, naming both paths; returns the new path. What set it aside then redoes or resumes the work."""
    path = Path(path)
    target = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    os.replace(path, target)
    print(f"warning: {path} is {reason}; set aside as {target.name} (the work it stood for is redone)", file=sys.stderr)
    return target


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fault_point(name: str) -> None:
    """Tests only: with ``GRL_FAULT_PAUSE=name[:n]`` the n-th time (default 1st) this process reaches the
    point ``name`` it prints ``FAULT-POINT name`` to stderr and sleeps, so that a test can SIGKILL it
    exactly there (tests/test_faults.py). A no-op otherwise."""
    wanted = os.environ.get("GRL_FAULT_PAUSE", "")
    if not wanted or wanted.split(":")[0] != name:
        return
    count = _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    target = int(wanted.split(":")[1]) if ":" in wanted else 1
    if count == target:
        # the process's real stderr: inside a kernel sys.stderr is the notebook's output
        print(f"FAULT-POINT {name}", file=sys.__stderr__ or sys.stderr, flush=True)
        # Sleeps on after SIGKILL's test, but not after SIGTERM / SIGUSR1's: their handler has a checkpoint to
        # write (time.sleep itself resumes after a handled signal).
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not _PREEMPTED.is_set():
            time.sleep(0.05)


_FAULT_COUNTS: dict[str, int] = {}
_PREEMPTED = threading.Event()


def note_preemption() -> None:
    """Called by the trainer's SIGTERM / SIGUSR1 handler (grl.engine.guards.preemption_watch)."""
    _PREEMPTED.set()
