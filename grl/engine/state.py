"""A training's state between epochs, and how it is saved, found and restored (the files: grl.run_folder).

:class:`TrainState` holds what one epoch hands the next; its checkpoint is tensors and plain data only, so it
loads with ``weights_only=True``. Repeatability rests on the RNG states saved with it: a resumed run reproduces
an uninterrupted one bit-for-bit on CPU, from an epoch's end or from the middle of one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grl import run_folder
from grl.config import Config
from grl.utils import atomic_write_bytes, set_aside


class RunMismatchError(ValueError):
    """out_dir holds a checkpoint or result of a different configuration (another config.key())."""


CHECKPOINT_KEYS = ("key", "epoch", "model", "objective", "optimizer", "scheduler", "scaler", "rng", "history")


@dataclass
class TrainState:
    """What one epoch hands the next, and what a checkpoint saves."""

    model: torch.nn.Module
    objective: torch.nn.Module  # the losses, with the OIM lookup tables
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    history: list[dict] = field(default_factory=list)  # one record per finished epoch (metrics.jsonl)
    epochs_done: int = 0
    wall_before: float = 0.0  # seconds trained by the processes before this one (a resumed run)
    last_eval: dict | None = None  # the last epoch's evaluation, kept by the final checkpoint
    best: dict | None = None  # select_best's model so far
    partial: dict | None = None  # the epoch after epochs_done up to a step (a preemption checkpoint)

    def checkpoint(self, key: str, config: Config, wall: float, world: int, last_eval=None, partial=None) -> dict:
        """The checkpoint's content; ``partial``: the epoch after ``epochs_done`` trained up to a step."""
        return {
            "key": key,
            "config": config.to_dict(),
            "epoch": self.epochs_done,
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": get_rng_states(),
            "history": self.history,
            "eval": last_eval,
            "best": self.best,
            "wall_time_s": wall,
            **({"partial": partial} if partial is not None else {}),
            **({"world_size": world} if world > 1 else {}),
        }

    def restore(self, ckpt: dict) -> None:
        """Continue from a checkpoint: weights, tables, optimizer, schedule, scaler, RNG states and history."""
        self.model.load_state_dict(ckpt["model"])
        self.objective.load_state_dict(ckpt["objective"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_states(ckpt["rng"])
        self.epochs_done, self.history = ckpt["epoch"], list(ckpt["history"])
        self.partial = ckpt.get("partial")  # a checkpoint taken in the middle of epoch epochs_done + 1
        self.wall_before, self.last_eval, self.best = ckpt["wall_time_s"], ckpt.get("eval"), ckpt.get("best")

    def keep_best(self, epoch: int, metrics: dict, feature: str) -> None:
        """Keep this evaluation's model if it beats ``best`` by Rank-1 of ``feature`` (ties keep the earlier epoch):
        the release's test-set selection (``select_best``)."""
        if self.best is not None and metrics[feature]["rank1"] <= self.best["metrics"][feature]["rank1"]:
            return
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.best = {"epoch": epoch, "metrics": metrics, "state_dict": state}


def load_result_for(out_dir: Path, key: str) -> dict | None:
    """The run's finished result, None when there is none; a result of another configuration is refused."""
    from grl.experiments import load_result

    result = load_result(out_dir)  # sets an unreadable result file aside
    if result is None:
        return None
    if result.get("key") != key:
        raise RunMismatchError(
            f"{run_folder.result(out_dir)} holds the finished result of config key {result.get('key')!r}, not "
            f"{key!r}; use another out_dir for this configuration (or delete that run)"
        )
    return result


def load_checkpoint(path: Path, key: str, config: Config) -> dict | None:
    """The run's checkpoint, None when there is none -- or when it is truncated or corrupt: it is then
    set aside (with a warning naming it) and the run starts again from its first epoch."""
    if not path.exists():
        return None
    try:
        ckpt = run_folder.load_tensors(path)
    except run_folder.UnreadableFile as exc:
        if exc.foreign:  # one written by someone else, or by an older version of this project
            set_aside(path, f"a checkpoint holding objects other than tensors and plain data, not loaded "
                            f"(an older checkpoint format, or a file that could run code): {exc.detail}")  # fmt: skip
        else:
            set_aside(path, f"an unreadable checkpoint ({exc})")
        return None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        set_aside(path, "not a complete checkpoint of this project")
        return None
    if ckpt.get("key") != key:
        raise RunMismatchError(
            f"{path} is a checkpoint of config key {ckpt.get('key')!r}, but this config's key is {key!r}"
            f"{config_diff(ckpt.get('config', {}), config)}; refusing to resume a different configuration "
            "- use another out_dir or delete the checkpoint"
        )
    return ckpt


def config_diff(saved: dict, config: Config) -> str:
    ours = config.to_dict()
    diff = [
        f"{k}: {saved.get(k)!r} -> {ours.get(k)!r}"
        for k in sorted(set(saved) | set(ours))
        if saved.get(k) != ours.get(k)
    ]
    return f" (differing fields: {', '.join(diff)})" if diff else ""


def write_history(path: Path, history: list[dict]) -> None:
    """metrics.jsonl rewritten from the checkpoint's history: it never holds an epoch the checkpoint does not."""
    atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in history).encode())


def get_rng_states() -> dict:
    """Every generator's state as tensors and plain data, so that the checkpoint loads with ``weights_only=True``
    (numpy's state holds an ndarray, which that loader refuses: its 624 words travel as an int64 tensor)."""
    kind, words, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"kind": kind, "words": torch.from_numpy(words.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}  # fmt: skip
    states = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    words = n["words"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], words, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch: a pure function of (seed, epoch), so resuming needs no loader state."""
    return (seed * 1_000_003 + epoch * 7_919 + 1) % 2**31
