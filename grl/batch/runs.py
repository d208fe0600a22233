"""Runs trained in this process, as the notebooks call them: ``run_or_load`` (the experiment notebook's one call),
``ensure_run(s)`` (the tour, Figure 4 and the report make the runs they need), and training under torchrun when
``--procs-per-run N`` asks for it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from grl.batch.core import PROCS_PER_RUN, procs_per_run
from grl.batch.shared import check_data
from grl.experiments import Run, load_result, make_run, runs_for


def run_or_load(run: Run, progress: bool = True) -> dict:
    """The run's result: loaded if result.json holds its config, else trained now (resuming a checkpoint)."""
    from grl.engine.inference import complete_evaluation

    result = complete_evaluation(run.config, run.run_dir)
    if result is not None:
        return result
    from grl.engine import train

    check_data([run])  # cheap when the data are there; generates the built-in sets otherwise
    procs = procs_per_run()
    if procs > 1 and "WORLD_SIZE" not in os.environ:
        return _train_with_torchrun(run, procs)
    return train(
        run.config, run.run_dir, progress=progress, extra={"overrides": run.overrides} if run.overrides else None
    )


def _train_with_torchrun(run: Run, procs: int) -> dict:
    """Train ``run`` on ``procs`` processes together (DistributedDataParallel, grl.engine.distributed): the
    notebook's kernel launches ``torchrun --standalone --nproc_per_node procs -m grl train`` and waits."""
    import subprocess

    from grl.engine import distributed

    distributed.check_world_size(run.config.batch_size, procs)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={procs}",
        "-m",
        "grl",
        "train",
        "--experiment",
        run.experiment,
        "--profile",
        run.profile,
        "--dataset",
        run.dataset,
        "--split",
        str(run.split),
        "--seed",
        str(run.config.seed),
        "--data-root",
        run.config.data_root,
        "--run-dir",
        str(run.run_dir),
        "--recipe",
        run.config.recipe,
        *[arg for k, v in sorted(run.overrides.items()) for arg in ("--set", f"{k}={v}")],
    ]
    print(f"training {run.name} on {procs} processes: {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, env={k: v for k, v in os.environ.items() if k != PROCS_PER_RUN})
    if done.returncode != 0:
        raise RuntimeError(f"torchrun exited with {done.returncode} training {run.name} (its output is above)")
    result = load_result(run.run_dir, run.config.key())
    if result is None:
        raise RuntimeError(f"torchrun ended without writing {run.result_path}")
    return result


def ensure_run(
    experiment: str,
    dataset: str,
    profile: str = "quick",
    split: int = 0,
    seed: int = 0,
    data_root: str = "",
    root: str | Path | None = None,
) -> Path:
    """Train one catalogue run in-process if its result.json is missing; return its run_dir."""
    run = make_run(experiment, dataset, profile, split=split, seed=seed, data_root=data_root, root=root)
    if not run.is_done():
        run_or_load(run, progress=False)
    return run.run_dir


def ensure_runs(
    profile: str = "quick",
    only: str | None = None,
    dataset: str | None = None,
    seeds: tuple[int, ...] | None = None,
    root: str | Path | None = None,
    progress: bool = True,
    recipe: str | None = None,
    overrides: dict | None = None,
) -> list[Run]:
    """Train every missing run of a profile (every seed) in-process (for the quick profile: a couple of minutes)."""
    from tqdm import tqdm

    runs = runs_for(profile, only, dataset, seeds=seeds, root=root, recipe=recipe, overrides=overrides)
    missing = [r for r in runs if not r.is_done()]
    if missing:
        check_data(missing)
    for run in tqdm(missing, desc=f"training missing {profile} runs", file=sys.stderr, disable=not progress):
        run_or_load(run, progress=False)
    return runs
