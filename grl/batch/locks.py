"""One batch per reports folder at a time (a file lock), and the checks before any work: the folders writable,
enough free space for the runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from grl.batch.core import LOCK, BatchError
from grl.experiments import Run
from grl.utils import atomic_write_json


def os_error_message(exc: OSError, where: Path) -> str:
    path = exc.filename or where
    what = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the folder is read-only",
        errno.EACCES: "permission denied",
        errno.EDQUOT: "the disk quota is exceeded",
    }.get(exc.errno, exc.strerror)
    return (
        f"{path}: {what} ({exc.strerror}). Free some space or make the folder writable (or pass --root "
        "to write elsewhere), then rerun the same command: finished runs are kept and the rest resumes."
    )


def stop_if_out_of_space(exc: Exception, where: Path) -> None:
    """A run that failed because the disk is full or read-only is no failure of the run: stop the batch."""
    text = str(exc)
    for code, words in (
        (errno.ENOSPC, "No space left on device"),
        (errno.EROFS, "Read-only file system"),
        (errno.EDQUOT, "Disk quota exceeded"),
    ):
        if words in text:
            raise BatchError(os_error_message(OSError(code, words), where)) from None


# ---------------------------------------------------------------------------------------
# before any work: one batch per folder, writable folders, enough space
@contextlib.contextmanager
def batch_lock(folder: Path):
    """Hold ``folder/.batch.lock`` for the batch. A second batch on the same folder refuses at once,
    naming the holder's PID; a lock left by a killed process is free again (the OS drops it)."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK))
    holder = folder / (LOCK + ".json")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            who = json.loads(holder.read_text())
        except (OSError, ValueError):
            who = {}
        raise BatchError(
            f"another batch (PID {who.get('pid', '?')}, started {who.get('started', '?')}: "
            f"{who.get('command', '?')}) is running on {folder}; wait for it to finish or stop it. "
            "This invocation did nothing."
        ) from None
    try:
        atomic_write_json(
            holder, {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        )
        yield
    finally:
        lock.release()


def run_bytes(run: Run) -> int:
    """Rough disk need of one run: checkpoint (weights, optimiser state, lookup tables) + model.pt + notebook."""
    import torch

    from grl.models import build_model

    with torch.device("meta"):  # sizes only: no memory, no pretrained weights
        model = build_model(run.config.replace(pretrained=False))
    weights = sum(p.numel() for p in model.parameters()) * torch.finfo(run.config.torch_dtype).bits // 8
    return 4 * weights + (4 << 20)


def preflight(out: Path, runs: list[Run]) -> None:
    """Refuse, with one message, a reports or data folder that is not writable or lacks the space the
    missing runs need."""
    from grl.paths import data_dir

    for folder in (out, data_dir()):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable-"):
                pass
        except OSError as exc:
            raise BatchError(
                f"{folder} is not writable ({exc.strerror}): the batch writes its "
                f"{'runs and report' if folder == out else 'generated data'} there. Make it writable, "
                "or choose another folder (--root for reports, GRL_DATA_DIR for data)."
            ) from None
    missing = [r for r in runs if not r.is_done()]
    if not missing:
        return
    need = run_bytes(missing[0]) * len(missing)
    free = shutil.disk_usage(out).free
    if free < need:
        raise BatchError(
            f"{out}: {len(missing)} runs to train need about {need / 2**30:.2f} GiB "
            f"(checkpoints, weights, notebooks), but only {free / 2**30:.2f} GiB are free. "
            "Free some space or pass --root to write elsewhere."
        )
