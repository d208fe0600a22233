"""Small helpers shared by the package: atomic writes, setting bad files aside, seeding, device choice."""
from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
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


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available on this machine; use device='cpu' or 'auto'")
    return device


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
        time.sleep(600)


_FAULT_COUNTS: dict[str, int] = {}
