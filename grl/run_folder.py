"""The run folder: the one place that names the files a training writes and says what each holds.

A run lives in one folder (``reports/<profile>/runs/<experiment>-<dataset>-...``):

* ``checkpoint.pt`` (:data:`CHECKPOINT`) -- written atomically after every epoch, and at the current step when
  SIGTERM or SIGUSR1 arrives: model, objective (the OIM lookup tables included), optimiser, scheduler, grad scaler,
  RNG states, per-epoch history, config and key. Tensors and plain data only (loads with ``weights_only=True``).
* ``metrics.jsonl`` (:data:`METRICS`) -- one JSON object per epoch (loss terms, ``lr``, timings, and ``eval``:
  feature -> metrics where the test set was evaluated); rewritten from the checkpoint's history on resume, so it
  never holds an epoch the checkpoint does not.
* ``model.pt`` (:data:`MODEL`) -- the final weights: ``{"state_dict", "config", "key"}``.
* ``result.json`` (:data:`RESULT`) -- written last and atomically, the done-marker: ``key``, ``config``,
  ``metrics`` (feature -> mAP / rank-k), timings, provenance.
* ``tensorboard/`` (:data:`EVENTS`) -- TensorBoard event files (``tensorboard --logdir reports/cpu/runs``).
* ``final_g.json`` (:data:`FINAL_G`) -- the convergence benchmark's extra evaluation of GRL's own F^g
  (docs/convergence.md): ``key`` and, for GRL models, ``g``: mAP and Rank-1.

Who writes what: grl.engine.trainer the first four, grl.engine.events the fifth, grl.bench.convergence the last.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
MODEL = "model.pt"
RESULT = "result.json"
EVENTS = "tensorboard"
FINAL_G = "final_g.json"
FILES = (CHECKPOINT, METRICS, MODEL, RESULT, EVENTS, FINAL_G)


def checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def metrics(run_dir: str | Path) -> Path:
    return Path(run_dir) / METRICS


def model(run_dir: str | Path) -> Path:
    return Path(run_dir) / MODEL


def result(run_dir: str | Path) -> Path:
    return Path(run_dir) / RESULT


def events(run_dir: str | Path) -> Path:
    return Path(run_dir) / EVENTS


def final_g(run_dir: str | Path) -> Path:
    return Path(run_dir) / FINAL_G


class UnreadableFile(ValueError):
    """A checkpoint or model file that :func:`load_tensors` will not or cannot read; the message says why."""

    def __init__(self, reason: str, foreign: bool = False, detail: str = ""):
        super().__init__(reason)
        self.foreign = foreign  # refused because it holds objects other than tensors and plain data
        self.detail = detail  # torch's words for what it refused


def load_tensors(path: str | Path):
    """``torch.load`` of a checkpoint or model file, tensors and plain data only: a file holding any other object (a
    pickled class or function: one that could run code, or an older format) is never unpickled. Raises
    :class:`UnreadableFile` for such a file and for a damaged or truncated one."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # damaged, or not a torch file at all
            raise UnreadableFile("not a torch file, or damaged") from None
        detail = " ".join(str(exc).split())[:160]
        raise UnreadableFile(f"it holds objects other than tensors and plain data: {detail}", True, detail) from None
    except Exception as exc:  # truncated zip, OSError(EINVAL) from a cut-off file, ...
        raise UnreadableFile(f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}") from None


def has_model(run_dir: str | Path) -> bool:
    """True when the run folder keeps its trained weights (results copied without them cannot be re-tested)."""
    return model(run_dir).is_file()
