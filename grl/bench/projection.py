"""The pure pieces of the GPU benchmark (grl.bench.gpu), tested on made-up numbers: the cards' dense bf16 peaks,
whether the loader keeps a step fed, the steps of a MARS epoch and the projected time of a profile's runs on
1 or N GPUs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, matched in order
# against torch.cuda.get_device_name() in lower case (more specific names first).
DENSE_BF16_PEAKS: tuple[tuple[str, str, float], ...] = (
    ("h100 pcie", "H100 PCIe", 756.0),
    ("h100 nvl", "H100 NVL", 835.0),
    ("gh200", "GH200", 989.0),
    ("h200", "H200", 989.0),
    ("h100", "H100 SXM", 989.0),
    ("a100", "A100", 312.0),
    ("l40s", "L40S", 362.0),
    ("rtx 4090", "RTX 4090", 165.0),
)

# Train sets of the paper's datasets (identities, tracklets): MARS's fixed partition; iLIDS-VID and PRID2011
# train on half of their 300 / 178 persons, one tracklet per person and camera (grl.data.datasets).
TRAIN_SIZES: dict[str, tuple[int, int]] = {"mars": (625, 8298), "ilidsvid": (150, 300), "prid2011": (89, 178)}


# ---- pure pieces (tested on made-up numbers) ------------------------------------------------------


def dense_bf16_peak(device_name: str) -> tuple[str, float] | None:
    """(card, dense bf16 TFLOP/s) of a known card, None for an unknown one."""
    name = device_name.lower()
    for pattern, card, peak in DENSE_BF16_PEAKS:
        if pattern in name:
            return card, peak
    return None


def loader_verdict(loader_clips_s: float, step_s: float, batch_size: int, workers: int | None = None) -> dict:
    """Does the loader keep up with a step of ``step_s`` seconds on ``batch_size`` clips?

    ``needed`` = batch_size / step_s clips/s; loading is the bottleneck when the loader delivers fewer.
    ``workers_needed``: with ``workers`` > 0, the workers that would deliver ``needed`` at the measured
    rate per worker (linear in the workers, as long as there are cores for them)."""
    needed = batch_size / step_s
    ratio = loader_clips_s / needed
    bottleneck = ratio < 1
    result = {"needed_clips_s": needed, "ratio": ratio, "bottleneck": bottleneck, "workers_needed": None}
    if workers:
        result["workers_needed"] = math.ceil(needed / (loader_clips_s / workers))
    if bottleneck:
        text = f"loading IS the bottleneck: it delivers {ratio:.2f}x what the step consumes"
        if result["workers_needed"]:
            text += f" (about {result['workers_needed']} workers would keep up)"
    else:
        text = f"loading is not the bottleneck: {ratio:.1f}x what the step consumes"
    result["text"] = text
    return result


@functools.lru_cache(maxsize=None)
def steps_per_epoch(dataset: str, batch_size: int, steps: int = 0) -> int:
    """Steps of one epoch the way the trainer counts them: ``config.steps_per_epoch`` when > 0, else the length of
    the PairedBatchSampler over the dataset's train tracklets (``tracklets // (batch_size / 2)``)."""
    from grl.data.sampling import PairedBatchSampler

    if steps > 0:
        return steps
    ids, tracklets = TRAIN_SIZES[dataset]
    fake = [_Tracklet(pid=k % ids, camid=(k // ids) % 2) for k in range(tracklets)]
    return len(PairedBatchSampler(fake, batch_size, seed=0))


@dataclass(frozen=True)
class _Tracklet:  # what the sampler reads of a tracklet
    pid: int
    camid: int


@dataclass(frozen=True)
class PlannedRun:
    """One training of a profile, as far as its time goes."""

    name: str
    dataset: str
    epochs: int
    steps_per_epoch: int
    seq_len: int


def plan_profile(profile: str = "paper") -> list[PlannedRun]:
    """Every training of the profile (grl.experiments.runs_for, in the batch's order) with its epochs and steps."""
    from grl.experiments import runs_for

    return [
        PlannedRun(
            r.name,
            r.dataset,
            r.config.epochs,
            steps_per_epoch(r.dataset, r.config.batch_size, r.config.steps_per_epoch),
            r.config.seq_len,
        )
        for r in runs_for(profile)
    ]


def project(runs: list[PlannedRun], step_s: float, seq_len: int, batch_size: int, gpus: int) -> dict:
    """Projected seconds of a MARS epoch and of the whole list of runs, on 1 and on ``gpus`` GPUs.

    The MARS epoch is one of ``batch_size`` clips. Every step costs ``step_s`` scaled by the run's T / ``seq_len``
    (Table 4's T = 4, 6, 10 runs; the cheaper
    Baseline is counted at the GRL step: an upper bound). On ``gpus`` GPUs: the profile with ``reproduce --jobs
    gpus`` (``total / gpus``, and ``makespan``: the runs started in the batch's order, each on the first GPU that
    frees up); one MARS epoch with ``torchrun --nproc_per_node gpus`` at ideal scaling (``epoch / gpus``).
    Evaluation, checkpoints and start-up are not counted."""
    if gpus < 1:
        raise ValueError(f"gpus must be >= 1, got {gpus}")
    times = [r.epochs * r.steps_per_epoch * step_s * r.seq_len / seq_len for r in runs]
    free = [0.0] * gpus
    for t in times:
        i = free.index(min(free))
        free[i] += t
    mars_steps = steps_per_epoch("mars", batch_size)
    total = sum(times)
    return {
        "mars_steps": mars_steps,
        "mars_epoch_s": mars_steps * step_s,
        "mars_epoch_n_s": mars_steps * step_s / gpus,
        "runs": len(runs),
        "steps": sum(r.epochs * r.steps_per_epoch for r in runs),
        "total_s": total,
        "total_n_s": total / gpus,
        "makespan_s": max(free),
        "gpus": gpus,
    }


def human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
