"""TensorBoard event files of a training: ``<run folder>/tensorboard/`` (``tensorboard --logdir reports/cpu/runs``).

Scalars, by global step (epoch × steps per epoch + step):

* ``loss/<term>`` every step: ``total`` and each term of the objective (eq. 11-14: ``frame_oim``, ``video_oim``,
  ``verification``, ...);
* ``train/lr`` (backbone), ``train/lr_new`` (new layers), ``train/clips_per_s``, ``train/epoch_time_s`` and each
  term's epoch mean ``epoch/<term>`` at the end of every epoch;
* ``eval/<feature>/<metric>`` (mAP, Rank-1, ...) at every periodic and the final evaluation.

A resumed run starts its writer with ``purge_step`` at the first step it trains, so TensorBoard drops what the
interrupted process had logged past its checkpoint and every step appears once.
"""

from __future__ import annotations

import time
from pathlib import Path

from grl.run_folder import EVENTS

FOLDER = EVENTS


class EventLog:
    """One run's TensorBoard writer (rank 0 only)."""

    def __init__(self, run_dir: str | Path, first_step: int = 1):
        """``first_step``: the global step this process logs first (1 for a new run); anything an earlier process
        logged from there on is dropped by TensorBoard (``purge_step``)."""
        from torch.utils.tensorboard import SummaryWriter

        folder = Path(run_dir) / FOLDER
        # TensorBoard reads a folder's event files in name order, and a name starts with the second it was made in;
        # within one second the order falls to a per-process counter ("10" before "9"), so a resumed run's file
        # could be read before the interrupted one's and its purge come too early. Start in a later second.
        now = int(time.time())
        if any(f".tfevents.{now}." in p.name for p in folder.glob("events.out.tfevents.*")):
            time.sleep(max(0.0, now + 1 - time.time()))
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=first_step)

    def step(self, global_step: int, terms: dict[str, float]) -> None:
        for name, value in terms.items():
            self.writer.add_scalar(f"loss/{name}", value, global_step)

    def epoch(self, global_step: int, record: dict) -> None:
        for key in ("lr", "lr_new", "clips_per_s", "epoch_time_s"):
            if key in record:
                self.writer.add_scalar(f"train/{key}", record[key], global_step)
        for key, value in record.items():
            if key.startswith("loss_") or key == "loss":
                self.writer.add_scalar(f"epoch/{key[5:] or 'total'}", value, global_step)
        for feature, metrics in (record.get("eval") or {}).items():
            for metric, value in metrics.items():
                self.writer.add_scalar(f"eval/{feature}/{metric}", value, global_step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
