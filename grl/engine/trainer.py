"""Training loop of a GRL run (paper §3.4, §4.2): resumable, repeatable, atomic.

A run lives in one folder ``out_dir``, whose files grl.run_folder names and describes: the checkpoint is written
atomically after every epoch, and at the current step when SIGTERM or SIGUSR1 arrives (what SLURM sends before
preempting or timing out a job), with the epoch's partial sums, after which training stops with
:class:`TrainingPreempted`; the result is written last, the done-marker.

Repeatability: every epoch reseeds torch/numpy/python from (seed, epoch) and tells the paired
sampler its epoch, so an epoch's data order and augmentations are a pure function of
(seed, epoch) and a resumed run reproduces an uninterrupted one bit-for-bit on CPU -- also from a
checkpoint taken in the middle of an epoch: the sampler skips the batches already trained on (their indices only,
no frame is read) and the RNG states are those of that step.

Several processes (``torchrun``, grl.engine.distributed): each rank trains on its whole pairs of the
global batch inside DistributedDataParallel; rank 0 alone evaluates and writes the files above while
the others wait at a barrier; every rank resumes from the same checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm  # text bars: no ipywidgets needed, same look in a terminal, JupyterLab and papermill

from grl import run_folder
from grl.config import Config
from grl.engine import distributed
from grl.engine.events import EventLog
from grl.engine.features import amp_dtype, autocast_context, evaluate_model
from grl.provenance import machine_info
from grl.run_folder import CHECKPOINT, METRICS, MODEL, RESULT
from grl.utils import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    fault_point,
    keep_freed_memory,
    note_preemption,
    resolve_device,
    seed_everything,
    seed_layers_by_name,
    set_aside,
    torch_threads,
)


class RunMismatchError(ValueError):
    """out_dir holds a checkpoint or result of a different configuration (another config.key())."""


class TrainingDiverged(FloatingPointError):
    """A loss term became non-finite or exceeded ``config.divergence_factor`` times its first-epoch value.
    Raised within one step; the run writes no result (its last epoch checkpoint stays)."""


class TrainingPreempted(RuntimeError):
    """SIGTERM, SIGUSR1 or SIGUSR2 arrived while training: a checkpoint of the current step was written (atomically) and
    training stopped; running the same run again resumes from that step. ``python -m grl`` exits with 75."""


# What a scheduler sends before it stops a job: SLURM sends SIGTERM at preemption and at the time limit (and, with
# --signal, the signal named there a set time before: SIGUSR1 by custom, SIGUSR2 for submitit's requeueing); kill's
# default is SIGTERM too.
PREEMPTION_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


@contextlib.contextmanager
def preemption_watch():
    """Yields a function that returns the name of the first preemption signal received so far (or None).

    Python lets only the main thread set signal handlers; elsewhere nothing is watched. The previous handlers
    come back when the block ends, so a finished training leaves SIGTERM as it found it."""
    received: list[str] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def handler(signum, frame):
            received.append(signal.Signals(signum).name)
            note_preemption()

        for name in PREEMPTION_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, handler)
    try:
        yield lambda: received[0] if received else None
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


class _StopAtStep(Exception):
    """train_one_epoch's way out after a preemption signal; ``partial`` is the epoch so far (plain data)."""

    def __init__(self, signal_name: str, partial: dict):
        super().__init__(signal_name)
        self.signal_name, self.partial = signal_name, partial


def divergence_check(terms: dict[str, float], reference: dict[str, float], factor: float) -> list[str]:
    """The loss terms that diverged: non-finite, or above ``factor`` × max(|reference|, 1) (a term's reference is
    its first-epoch mean; the floor of 1 keeps a term that starts near 0 from tripping on ordinary noise)."""
    bad = []
    for name, value in terms.items():
        if value != value or value in (float("inf"), float("-inf")):
            bad.append(f"{name}={value}")
        elif factor > 0 and name in reference and abs(value) > factor * max(abs(reference[name]), 1.0):
            bad.append(f"{name}={value:.4g} (first epoch: {reference[name]:.4g}, limit x{factor:g})")
    return bad


def train(config: Config, out_dir, *, progress: bool = True, dataset=None, extra: dict | None = None) -> dict:
    """Train `config` in `out_dir` (resuming from its checkpoint), evaluate, return the result dict.

    If out_dir/result.json already holds this configuration's result, it is returned unchanged.
    `dataset` defaults to grl.data.load_config_dataset(config). Runs with config.threads torch threads
    and in config.dtype (float64 makes the numbers identical on every x86-64 CPU; README).
    Under torchrun (WORLD_SIZE > 1) the ranks train the run together (grl.engine.distributed).
    Freed memory is kept for reuse (grl.utils.keep_freed_memory: same numbers, fewer page faults).
    ``extra``: plain data written into result.json beside the rest (e.g. the run's ``overrides``).
    """
    keep_freed_memory()
    with distributed.session(config.device), torch_threads(config.threads), preemption_watch() as preempted:
        return _train(config, Path(out_dir), progress, dataset, preempted, extra or {})


def _train(config: Config, out_dir: Path, progress: bool, dataset, preempted=lambda: None, result_extra=None) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = config.key()
    world, main = distributed.world_size(), distributed.is_main()
    distributed.check_world_size(config.batch_size, world)
    with distributed.main_first():  # rank 0 alone sets unreadable files aside
        done = _load_result(out_dir / RESULT, key)
        ckpt = _load_checkpoint(out_dir / CHECKPOINT, key, config) if done is None else None
    if done is not None:
        return done

    started = time.perf_counter()
    device = resolve_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", distributed.local_rank())
    seed_everything(config.seed)
    with distributed.main_first():  # rank 0 alone builds what the ranks share (frame caches, pretrained backbone)
        if dataset is None:
            from grl.data import load_config_dataset

            dataset = load_config_dataset(config)
        model, objective = _build(config, dataset, device)
    joint = None
    if world > 1:
        if config.sync_bn:
            model = distributed.convert_sync_batchnorm(model)
        # Not broadcast_buffers: the OIM tables are identical by construction (and the tests check it);
        # without sync_bn each rank keeps its own BatchNorm running statistics, and rank 0's are saved.
        # Without the video-level OIM (Table 6's F-OIM) F^l's integration layers are in no loss: DDP must then look
        # for unused parameters (an extra graph traversal per step, not needed by any other ablation).
        joint = torch.nn.parallel.DistributedDataParallel(
            distributed.GatheredObjective(model, objective),
            device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=False,
            find_unused_parameters="v" not in config.oim,
        )
    optimizer = build_optimizer(config, model, objective)
    scheduler = build_scheduler(config, optimizer)
    use_scaler = device.type == "cuda" and config.amp and amp_dtype(device) == torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    from grl.data.loader import build_train_loader

    loader = build_train_loader(dataset, config, config.seed, rank=distributed.rank(), world_size=world)
    steps = config.steps_per_epoch or len(loader)
    if steps < 1:
        raise ValueError(
            f"train: the train loader of dataset {dataset.name!r} yields no batch (batch_size={config.batch_size})"
        )

    history: list[dict] = []
    start_epoch, wall_before, last_eval, best, partial = 0, 0.0, None, None, None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        objective.load_state_dict(ckpt["objective"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        _set_rng_states(ckpt["rng"])
        start_epoch, history = ckpt["epoch"], list(ckpt["history"])
        partial = ckpt.get("partial")  # a checkpoint taken in the middle of epoch start_epoch + 1
        wall_before, last_eval, best = ckpt["wall_time_s"], ckpt.get("eval"), ckpt.get("best")
        if ckpt.get("world_size", 1) != world:
            print(
                f"warning: {out_dir / CHECKPOINT} was written by {ckpt.get('world_size', 1)} process(es), this run has "
                f"{world}; the epochs that follow see the same global batches"
                f"{'' if config.sync_bn else ' but BatchNorm statistics over a different share of them'}",
                file=sys.stderr,
            )
        if main:
            _write_history(out_dir / METRICS, history)
    elif main and (out_dir / METRICS).exists():
        (out_dir / METRICS).unlink()  # left by a run that died before its first checkpoint

    # TensorBoard (grl.engine.events), rank 0 only; a resumed run drops what the interrupted one logged past its
    # checkpoint.
    events = EventLog(out_dir, start_epoch * steps + (partial["step"] if partial else 0) + 1) if main else None
    try:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            extra = {"joint": joint} if joint is not None else {}
            reference = _first_epoch_terms(history)
            try:
                record = train_one_epoch(
                    config, model, objective, optimizer, scaler, loader, device, epoch, steps, progress and main,
                    reference=reference, start=partial, stop=preempted, events=events, **extra,
                )  # fmt: skip
            except TrainingDiverged as exc:
                raise TrainingDiverged(f"run {out_dir.name} ({out_dir}): {exc}; no result written") from None
            except _StopAtStep as stop:
                wall = wall_before + time.perf_counter() - started
                if main:
                    atomic_torch_save(
                        _checkpoint(key, config, epoch, model, objective, optimizer, scheduler, scaler, history,
                                    None, best, wall, world, partial=stop.partial),
                        out_dir / CHECKPOINT,
                    )  # fmt: skip
                distributed.barrier()
                raise TrainingPreempted(
                    f"run {out_dir.name}: {stop.signal_name} at epoch {epoch + 1}, step {stop.partial['step']} of "
                    f"{steps}; a checkpoint of this step is in {out_dir / CHECKPOINT}: run the same command again "
                    "to resume from it"
                ) from None
            partial = None
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["lr_new"] = optimizer.param_groups[-1]["lr"]
            scheduler.step()
            last = epoch + 1 == config.epochs
            last_eval = None
            if main and (last or (config.eval_every > 0 and (epoch + 1) % config.eval_every == 0)):
                last_eval = evaluate_model(model, dataset, config)
                record["eval"] = {f: _headline(m) for f, m in last_eval.items()}
                if config.select_best:
                    best = _keep_best(best, epoch + 1, last_eval, model, config.main_feature)
            record["epoch_time_s"] = time.perf_counter() - t0
            record["wall_time_s"] = wall_before + time.perf_counter() - started
            history.append(record)
            if events is not None:
                events.epoch((epoch + 1) * steps, record)
            if not main:
                distributed.barrier()  # rank 0 evaluates and writes the checkpoint
                fault_point("after-checkpoint")
                continue
            atomic_torch_save(
                _checkpoint(key, config, epoch + 1, model, objective, optimizer, scheduler, scaler, history,
                            last_eval if last else None, best, record["wall_time_s"], world),
                out_dir / CHECKPOINT,
            )  # fmt: skip
            with open(out_dir / METRICS, "a") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
            distributed.barrier()
            fault_point("after-checkpoint")  # tests only (GRL_FAULT_PAUSE): a kill between two epochs
            signal_name = preempted()
            if signal_name and distributed.world_size() == 1:  # (several ranks agree inside train_one_epoch)
                raise TrainingPreempted(
                    f"run {out_dir.name}: {signal_name} at the end of epoch {epoch + 1}; its checkpoint is in "
                    f"{out_dir / CHECKPOINT}: run the same command again to resume from it"
                )
    finally:
        if events is not None:
            events.close()

    if not main:
        distributed.barrier()  # rank 0 evaluates and writes model.pt and result.json
        return _load_result(out_dir / RESULT, key)
    metrics = last_eval if last_eval is not None else evaluate_model(model, dataset, config)
    selection = None
    if config.select_best and best is not None:
        # The release keeps the epoch with the best test-set Rank-1: an optimistic, test-set selection.
        metrics, selection = (
            best["metrics"],
            {
                "epoch": best["epoch"],
                "feature": config.main_feature,
                "rule": "best Rank-1 of the periodic evaluations on the TEST set",
            },
        )
        model.load_state_dict(best["state_dict"])
    atomic_torch_save({"state_dict": model.state_dict(), "config": config.to_dict(), "key": key}, out_dir / MODEL)
    result = {
        "key": key,
        "config": config.to_dict(),
        "metrics": metrics,
        "protocol": dict(getattr(dataset, "protocol", {}) or {}),
        "dataset": dataset_summary(dataset),
        "epochs_done": config.epochs,
        "wall_time_s": wall_before + time.perf_counter() - started,
        "device": _device_name(device),
        "torch": torch.__version__,
        "seed": config.seed,
        "commit": git_commit(),
        "machine": machine_info(),
        "selection": selection,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(result_extra or {}),
        **({"world_size": world} if world > 1 else {}),
    }
    atomic_write_json(out_dir / RESULT, result)
    distributed.barrier()
    return result


def _checkpoint(
    key,
    config,
    epochs_done,
    model,
    objective,
    optimizer,
    scheduler,
    scaler,
    history,
    last_eval,
    best,
    wall,
    world,
    partial=None,
) -> dict:
    """What checkpoint.pt holds: tensors and plain data only (it loads with ``weights_only=True``). ``partial``:
    the epoch after ``epochs_done`` trained up to a step (a preemption checkpoint)."""
    return {
        "key": key,
        "config": config.to_dict(),
        "epoch": epochs_done,
        "model": model.state_dict(),
        "objective": objective.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": _get_rng_states(),
        "history": history,
        "eval": last_eval,
        "best": best,
        "wall_time_s": wall,
        **({"partial": partial} if partial is not None else {}),
        **({"world_size": world} if world > 1 else {}),
    }


def complete_evaluation(config: Config, out_dir, dataset=None) -> dict | None:
    """The finished run's result, with the evaluations ``config`` asks for that it lacks added.

    Re-ranking (``config.rerank``) is evaluation only, so it is not part of a run's key: a run
    finished before it was asked for gets it here, from its saved model, without retraining.
    None when the run is not finished.
    """
    from grl.experiments import load_result

    out_dir = Path(out_dir)
    result = load_result(out_dir, config.key())
    wanted = f"{config.main_feature}+rerank"
    if result is None or not config.rerank or wanted in result["metrics"]:
        return result
    from grl.engine.features import load_run

    if dataset is None:
        from grl.data import load_config_dataset

        dataset = load_config_dataset(config)
    with distributed.main_first():  # evaluation once, by rank 0; the others then read its result
        if not distributed.is_main():
            return load_result(out_dir, config.key())
        try:
            _, model = load_run(out_dir)
        except (FileNotFoundError, ValueError) as exc:  # a result without its model: nothing to evaluate
            print(f"warning: cannot add {wanted} to {out_dir / RESULT}: {exc}", file=sys.stderr)
            return result
        with torch_threads(config.threads):
            result["metrics"][wanted] = evaluate_model(model, dataset, config)[wanted]
        atomic_write_json(out_dir / RESULT, result)
    return result


# ---- pieces (public: the benchmark and tests use them) ---------------------------------------


def build_optimizer(config: Config, model: torch.nn.Module, objective: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD, Nesterov momentum (or Adam when config.optimizer == "adam"); group 0 = backbone (lr), group 1 = every new layer (lr × new_layer_lr_mult).

    New layers: everything of the model outside ``model.backbone`` plus the objective's own
    parameters (e.g. the verification head; OIM lookup tables are buffers, not parameters).
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, torch.nn.Module):
        raise TypeError(f"build_optimizer: the model ({type(model).__name__}) has no 'backbone' sub-module")
    backbone_ids = {id(p) for p in backbone.parameters()}
    if config.gce_lr_as_backbone and isinstance(getattr(model, "correlation", None), torch.nn.Module):
        backbone_ids |= {id(p) for p in model.correlation.parameters()}  # the release's grouping: GCE with the backbone
    old = [p for p in model.parameters() if id(p) in backbone_ids and p.requires_grad]
    new = [p for p in model.parameters() if id(p) not in backbone_ids and p.requires_grad]
    new += [p for p in objective.parameters() if p.requires_grad]
    groups = [{"params": old, "lr": config.lr, "name": "backbone"}] if old else []  # none: a frozen backbone
    if new:
        groups.append({"params": new, "lr": config.lr * config.new_layer_lr_mult, "name": "new"})
    if config.optimizer == "adam":
        # Only for the CPU profiles (a tiny backbone from scratch, 400 steps). Measured on the synthetic
        # MARS-like set: the paper's SGD (lr 1e-3) gives GRL 17.8 mAP but the Baseline only 4.5; with
        # Adam 17.1 and 11.5. Adam keeps the Baseline from being handicapped by the short schedule.
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.momentum > 0
    )


def build_scheduler(config: Config, optimizer) -> torch.optim.lr_scheduler.StepLR:
    """lr × lr_gamma every lr_step epochs (lr_step <= 0: constant lr)."""
    if config.lr_step <= 0:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=1.0)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch: a pure function of (seed, epoch), so resuming needs no loader state."""
    return (seed * 1_000_003 + epoch * 7_919 + 1) % 2**31


def train_one_epoch(
    config,
    model,
    objective,
    optimizer,
    scaler,
    loader,
    device,
    epoch,
    steps,
    progress,
    joint=None,
    reference=None,
    start=None,
    stop=None,
    events=None,
) -> dict:
    """Run `steps` optimisation steps; return the epoch's mean loss parts and throughput.

    ``joint``: the DistributedDataParallel module of a run on several processes (see train_step);
    losses are then those of the global batch and ``clips_per_s`` counts every rank's clips.
    ``reference``: each loss term's first-epoch mean (:func:`divergence_check`); None in the first epoch, whose
    first step's values stand in for it.
    ``start``: the epoch so far, from a checkpoint taken in its middle (``partial`` of :class:`_StopAtStep`):
    its first ``start["step"]`` batches are skipped and the RNG states are set to that step's.
    ``stop``: called after every step; a signal name it returns ends the epoch there with :class:`_StopAtStep`.
    ``events``: a :class:`grl.engine.events.EventLog` that gets every step's loss terms."""
    seed_everything(epoch_seed(config.seed, epoch))
    sampler = getattr(loader, "batch_sampler", None)
    for candidate in (sampler, getattr(loader, "sampler", None)):
        if hasattr(candidate, "set_epoch"):
            candidate.set_epoch(epoch)
            break
    model.train()
    if config.freeze_backbone:
        model.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics too
    objective.train()
    loss_sum = 0.0
    parts_sum: dict[str, Any] = {}
    clips_seen, step, trained_before = 0, 0, 0.0
    if start is not None:
        if not hasattr(sampler, "skip_next"):
            raise ValueError("train_one_epoch: resuming in the middle of an epoch needs the train loader's sampler")
        sampler.skip_next(start["step"])
        step, loss_sum, clips_seen = start["step"], start["loss_sum"], start["clips_seen"]
        parts_sum, reference, trained_before = dict(start["parts_sum"]), start["reference"], start["train_time_s"]
        _set_rng_states(start["rng"])
    bar = tqdm(
        total=steps,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        file=sys.stderr,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    bar.update(step)
    t0 = time.perf_counter()
    with bar:
        while step < steps:
            for clips, pids, _camids in loader:
                extra = {"joint": joint} if joint is not None else {}
                loss_value, parts = train_step(
                    config, model, objective, optimizer, scaler, clips, pids, device, **extra
                )
                terms = {"total": loss_value, **{k: float(v) for k, v in parts.items() if k != "total"}}
                if reference is None:
                    reference = terms  # the first epoch: its first step is the reference
                diverged = divergence_check(terms, reference, config.divergence_factor)
                if diverged:
                    raise TrainingDiverged(
                        f"training diverged at epoch {epoch + 1}, step {step + 1}: {', '.join(diverged)}; "
                        f"lower config.lr ({config.lr}) or check the data"
                    )
                if events is not None:
                    events.step(epoch * steps + step + 1, terms)
                loss_sum += loss_value
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else v)
                clips_seen += clips.shape[0] * distributed.world_size()
                step += 1
                fault_point("train-step")  # tests only (GRL_FAULT_PAUSE=train-step:n): a kill in the middle of an epoch
                rate = clips_seen / max(trained_before + time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.3f}", clips_s=f"{rate:.1f}", refresh=False)
                bar.update(1)
                signal_name = stop() if stop is not None else None
                if distributed.world_size() > 1:  # every rank stops at the same step, or none does
                    signal_name = distributed.any_rank(signal_name)
                if signal_name and step < steps:
                    partial = {
                        "step": step,
                        "loss_sum": loss_sum,
                        "parts_sum": {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in parts_sum.items()},
                        "clips_seen": clips_seen,
                        "reference": reference,
                        "train_time_s": trained_before + time.perf_counter() - t0,
                        "rng": _get_rng_states(),
                    }
                    raise _StopAtStep(signal_name, partial)
                if step >= steps:
                    break
            else:
                if step == 0:
                    raise ValueError("train: the train loader yielded no batch")
        bar.refresh()  # show the epoch's last loss and rate even when steps beat mininterval
    elapsed = trained_before + time.perf_counter() - t0
    record = {
        "epoch": epoch + 1,
        "loss": loss_sum / steps,
        "steps": steps,
        "clips_per_s": clips_seen / elapsed,
        "train_time_s": elapsed,
    }
    for k, v in parts_sum.items():
        if k != "total":  # already "loss"
            record[f"loss_{k}"] = float(v) / steps
    return record


def train_step(config, model, objective, optimizer, scaler, clips, pids, device, joint=None) -> tuple[float, dict]:
    """One forward/backward/update; returns (loss value, loss parts). One host sync (loss.item()).

    With ``joint`` (DistributedDataParallel over grl.engine.distributed.GatheredObjective) the loss is the
    global batch's, the same on every rank, and DDP averages the gradients."""
    clips = clips.to(device, dtype=config.torch_dtype, non_blocking=True)
    pids = pids.to(device, non_blocking=True)
    with autocast_context(config, device):
        if joint is not None:
            loss, parts = joint(clips, pids)
        else:
            output = model(clips)
            loss, parts = objective(output, pids)
    optimizer.zero_grad(set_to_none=True)
    if scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    value = loss.item()  # the caller's divergence guard reads it (train_one_epoch): NaN, inf or exploding
    return value, parts


# ---- helpers ---------------------------------------------------------------------------------


def _build(config: Config, dataset, device: torch.device):
    from grl.losses import GRLObjective
    from grl.models import build_model

    model = build_model(config)  # the tiny backbone's pretrained weights are made (once) there
    if config.backbone_from:
        load_backbone(model, config.backbone_from)
    if config.freeze_backbone:
        model.backbone.requires_grad_(False)
    objective = GRLObjective(config, dataset.num_train_ids, _feature_dims(model))
    if config.crn:
        # The backbone is built first from the seed, so it starts alike in every arm already; the new layers
        # are reseeded by name, so a layer two arms share starts alike however many others either builds.
        seed_layers_by_name(model, config.seed, skip=("backbone",))
        seed_layers_by_name(objective, config.seed, prefix="objective.")
    model.to(device=device, dtype=config.torch_dtype)
    objective.to(device=device, dtype=config.torch_dtype)
    if device.type == "cuda" and config.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, objective


def load_backbone(model, source) -> None:
    """Copy the backbone weights of a finished run (its folder or model.pt) into ``model.backbone``: the backbone
    question of docs/convergence.md (GRL's heads on the Baseline's trained backbone)."""
    from grl.engine.features import load_run

    _, trained = load_run(source)
    model.backbone.load_state_dict(trained.backbone.state_dict())


def _feature_dims(model) -> Any:
    """What GRLObjective needs to size its heads: the model's declared feature dimensions."""
    for attr in ("dims", "feature_dims"):
        if hasattr(model, attr):
            return getattr(model, attr)
    raise AttributeError(f"the model ({type(model).__name__}) declares no 'dims' for GRLObjective")


def _load_result(path: Path, key: str) -> dict | None:
    from grl.experiments import load_result

    result = load_result(path.parent)  # sets an unreadable result.json aside
    if result is None:
        return None
    if result.get("key") != key:
        raise RunMismatchError(
            f"{path} holds the finished result of config key {result.get('key')!r}, not {key!r}; "
            "use another out_dir for this configuration (or delete that run)"
        )
    return result


_CHECKPOINT_KEYS = ("key", "epoch", "model", "objective", "optimizer", "scheduler", "scaler", "rng", "history")


def _load_checkpoint(path: Path, key: str, config: Config) -> dict | None:
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
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _CHECKPOINT_KEYS):
        set_aside(path, "not a complete checkpoint of this project")
        return None
    if ckpt.get("key") != key:
        raise RunMismatchError(
            f"{path} is a checkpoint of config key {ckpt.get('key')!r}, but this config's key is {key!r}"
            f"{_config_diff(ckpt.get('config', {}), config)}; refusing to resume a different configuration "
            "- use another out_dir or delete the checkpoint"
        )
    return ckpt


def _config_diff(saved: dict, config: Config) -> str:
    ours = config.to_dict()
    diff = [
        f"{k}: {saved.get(k)!r} -> {ours.get(k)!r}"
        for k in sorted(set(saved) | set(ours))
        if saved.get(k) != ours.get(k)
    ]
    return f" (differing fields: {', '.join(diff)})" if diff else ""


def _write_history(path: Path, history: list[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in history).encode())


def _keep_best(best: dict | None, epoch: int, metrics: dict, model, feature: str) -> dict:
    """The better of ``best`` and this evaluation by Rank-1 of ``feature`` (ties keep the earlier epoch)."""
    if best is not None and metrics[feature]["rank1"] <= best["metrics"][feature]["rank1"]:
        return best
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"epoch": epoch, "metrics": metrics, "state_dict": state}


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("mAP", "rank1", "rank5", "rank10", "rank20") if k in metrics}


def _first_epoch_terms(history: list[dict]) -> dict[str, float] | None:
    """Each loss term's mean over the first epoch, from its record (None before the first epoch ends)."""
    if not history:
        return None
    first = history[0]
    return {"total": first["loss"], **{k[5:]: v for k, v in first.items() if k.startswith("loss_")}}


def _get_rng_states() -> dict:
    """Every generator's state as tensors and plain data, so that the checkpoint loads with ``weights_only=True``
    (numpy's state holds an ndarray, which that loader refuses: its 624 words travel as an int64 tensor)."""
    kind, words, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"kind": kind, "words": torch.from_numpy(words.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}  # fmt: skip
    states = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    words = n["words"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], words, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def dataset_summary(dataset) -> dict:
    """The dataset's JSON-friendly summary (VideoReIDDataset.summary_dict, else counts per subset)."""
    if hasattr(dataset, "summary_dict"):
        return dataset.summary_dict()
    out: dict[str, Any] = {"name": dataset.name, "root": str(dataset.root), "split": dataset.split}
    for subset in ("train", "query", "gallery"):
        tracklets = getattr(dataset, subset)
        out[f"{subset}_tracklets"] = len(tracklets)
        out[f"{subset}_ids"] = len({t.pid for t in tracklets})
        out[f"{subset}_frames"] = sum(len(t.frames) for t in tracklets)
    return out


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def git_commit() -> str:
    """HEAD of the checkout holding this package, or 'unknown' (no git, not a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
