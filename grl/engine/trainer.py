"""Training loop of a GRL run (paper §3.4, §4.2): resumable, repeatable, atomic.

One loop, read top to bottom: :func:`train` -> :func:`train_one_epoch` -> :func:`train_step`. What it is built
from is grl.engine.build; what it carries between epochs and saves is grl.engine.state (:class:`TrainState`);
what stops it early is grl.engine.guards; the files of its run folder are grl.run_folder's.

Repeatability: every epoch reseeds torch/numpy/python from (seed, epoch) and tells the paired
sampler its epoch, so an epoch's data order and augmentations are a pure function of
(seed, epoch) and a resumed run reproduces an uninterrupted one bit-for-bit on CPU -- also from a
checkpoint taken in the middle of an epoch: the sampler skips the batches already trained on (their indices only,
no frame is read) and the RNG states are those of that step.

Several processes (``torchrun``, grl.engine.distributed): each rank trains on its whole pairs of the
global batch inside DistributedDataParallel; rank 0 alone evaluates and writes the run folder while
the others wait at a barrier; every rank resumes from the same checkpoint.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm  # text bars: no ipywidgets needed, same look in a terminal, JupyterLab and papermill

from grl import run_folder
from grl.config import Config
from grl.engine import distributed
from grl.engine.build import build_optimizer, build_scheduler, build_training
from grl.engine.events import EventLog
from grl.engine.features import amp_dtype, autocast_context, evaluate_model
from grl.engine.guards import (
    StopAtStep,
    TrainingDiverged,
    TrainingPreempted,
    divergence_check,
    first_epoch_terms,
    preemption_watch,
)
from grl.engine.state import (
    RunMismatchError,
    TrainState,
    epoch_seed,
    get_rng_states,
    load_checkpoint,
    load_result_for,
    set_rng_states,
    write_history,
)
from grl.provenance import dataset_summary, device_name, git_commit, machine_info
from grl.utils import (
    atomic_torch_save,
    atomic_write_json,
    fault_point,
    keep_freed_memory,
    resolve_device,
    seed_everything,
    torch_threads,
)

__all__ = ["RunMismatchError", "TrainingDiverged", "TrainingPreempted", "train", "train_step"]


def train(config: Config, out_dir, *, progress: bool = True, dataset=None, extra: dict | None = None) -> dict:
    """Train `config` in `out_dir` (resuming from its checkpoint), evaluate, return the result dict.

    If the run folder already holds this configuration's result, it is returned unchanged.
    `dataset` defaults to grl.data.load_config_dataset(config). Runs with config.threads torch threads
    and in config.dtype (float64 makes the numbers identical on every x86-64 CPU; README).
    Under torchrun (WORLD_SIZE > 1) the ranks train the run together (grl.engine.distributed).
    Freed memory is kept for reuse (grl.utils.keep_freed_memory: same numbers, fewer page faults).
    ``extra``: plain data written into the result beside the rest (e.g. the run's ``overrides``).
    """
    keep_freed_memory()
    with distributed.session(config.device), torch_threads(config.threads), preemption_watch() as preempted:
        return _train(config, Path(out_dir), progress, dataset, preempted, extra or {})


def _train(config: Config, out_dir: Path, progress: bool, dataset, preempted=lambda: None, result_extra=None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    key, checkpoint_path, metrics_path = config.key(), run_folder.checkpoint(out_dir), run_folder.metrics(out_dir)
    world, main = distributed.world_size(), distributed.is_main()
    distributed.check_world_size(config.batch_size, world)
    with distributed.main_first():  # rank 0 alone sets unreadable files aside
        done = load_result_for(out_dir, key)
        ckpt = load_checkpoint(checkpoint_path, key, config) if done is None else None
    if done is not None:
        return done

    # ---- build: data, model and losses, optimizer, schedule; restore a checkpoint ----
    started = time.perf_counter()
    device = resolve_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", distributed.local_rank())
    seed_everything(config.seed)
    with distributed.main_first():  # rank 0 alone builds what the ranks share (frame caches, pretrained backbone)
        if dataset is None:
            from grl.data import load_config_dataset

            dataset = load_config_dataset(config)
        model, objective = build_training(config, dataset, device)
    joint = None
    if world > 1:
        model, joint = distributed.joint_module(config, model, objective, device)
    use_scaler = device.type == "cuda" and config.amp and amp_dtype(device) == torch.float16
    optimizer = build_optimizer(config, model, objective)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    state = TrainState(model, objective, optimizer, build_scheduler(config, optimizer), scaler)

    from grl.data.loader import build_train_loader

    loader = build_train_loader(dataset, config, config.seed, rank=distributed.rank(), world_size=world)
    steps = config.steps_per_epoch or len(loader)
    if steps < 1:
        raise ValueError(
            f"train: the train loader of dataset {dataset.name!r} yields no batch (batch_size={config.batch_size})"
        )
    if ckpt is not None:
        state.restore(ckpt)
        if ckpt.get("world_size", 1) != world:
            print(
                f"warning: {checkpoint_path} was written by {ckpt.get('world_size', 1)} process(es), this run has "
                f"{world}; the epochs that follow see the same global batches"
                f"{'' if config.sync_bn else ' but BatchNorm statistics over a different share of them'}",
                file=sys.stderr,
            )
        if main:
            write_history(metrics_path, state.history)
    elif main and metrics_path.exists():
        metrics_path.unlink()  # left by a run that died before its first checkpoint

    # ---- the loop: train an epoch, evaluate when asked, checkpoint ----
    # TensorBoard (grl.engine.events), rank 0 only; a resumed run drops what the interrupted one logged past its
    # checkpoint.
    first_step = state.epochs_done * steps + (state.partial["step"] if state.partial else 0) + 1
    events = EventLog(out_dir, first_step) if main else None
    try:
        for epoch in range(state.epochs_done, config.epochs):
            t0 = time.perf_counter()
            try:
                record = train_one_epoch(
                    config, state, loader, device, epoch, steps, progress=progress and main, joint=joint,
                    reference=first_epoch_terms(state.history), start=state.partial, stop=preempted, events=events,
                )  # fmt: skip
            except TrainingDiverged as exc:
                raise TrainingDiverged(f"run {out_dir.name} ({out_dir}): {exc}; no result written") from None
            except StopAtStep as stop:
                if main:
                    wall = state.wall_before + time.perf_counter() - started
                    atomic_torch_save(state.checkpoint(key, config, wall, world, partial=stop.partial), checkpoint_path)
                distributed.barrier()
                raise TrainingPreempted(
                    f"run {out_dir.name}: {stop.signal_name} at epoch {epoch + 1}, step {stop.partial['step']} of "
                    f"{steps}; a checkpoint of this step is in {checkpoint_path}: run the same command again "
                    "to resume from it"
                ) from None
            state.partial = None
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["lr_new"] = optimizer.param_groups[-1]["lr"]
            state.scheduler.step()
            last = epoch + 1 == config.epochs
            state.last_eval = None
            if main and (last or (config.eval_every > 0 and (epoch + 1) % config.eval_every == 0)):
                state.last_eval = evaluate_model(model, dataset, config)
                record["eval"] = {f: _headline(m) for f, m in state.last_eval.items()}
                if config.select_best:
                    state.keep_best(epoch + 1, state.last_eval, config.main_feature)
            record["epoch_time_s"] = time.perf_counter() - t0
            record["wall_time_s"] = state.wall_before + time.perf_counter() - started
            state.history.append(record)
            state.epochs_done = epoch + 1
            if events is not None:
                events.epoch((epoch + 1) * steps, record)
            if not main:
                distributed.barrier()  # rank 0 evaluates and writes the checkpoint
                fault_point("after-checkpoint")
                continue
            final_eval = state.last_eval if last else None
            atomic_torch_save(state.checkpoint(key, config, record["wall_time_s"], world, final_eval), checkpoint_path)
            with open(metrics_path, "a") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
            distributed.barrier()
            fault_point("after-checkpoint")  # tests only (GRL_FAULT_PAUSE): a kill between two epochs
            signal_name = preempted()
            if signal_name and distributed.world_size() == 1:  # (several ranks agree inside train_one_epoch)
                raise TrainingPreempted(
                    f"run {out_dir.name}: {signal_name} at the end of epoch {epoch + 1}; its checkpoint is in "
                    f"{checkpoint_path}: run the same command again to resume from it"
                )
    finally:
        if events is not None:
            events.close()

    if not main:
        distributed.barrier()  # rank 0 evaluates and writes the model and the result
        return load_result_for(out_dir, key)
    result = _finish(config, out_dir, state, dataset, device, result_extra, started)
    if world > 1:
        result["world_size"] = world
    atomic_write_json(run_folder.result(out_dir), result)
    distributed.barrier()
    return result


def _finish(config: Config, out_dir: Path, state: TrainState, dataset, device, result_extra, started: float) -> dict:
    """Write the final model; return the result (the caller writes it, last). Its wall time counts the final
    evaluation and the model's write, from ``started`` (``time.perf_counter``) plus the time before a resume."""
    metrics = state.last_eval if state.last_eval is not None else evaluate_model(state.model, dataset, config)
    selection = None
    if config.select_best and state.best is not None:
        # The release keeps the epoch with the best test-set Rank-1: an optimistic, test-set selection.
        metrics = state.best["metrics"]
        selection = {
            "epoch": state.best["epoch"],
            "feature": config.main_feature,
            "rule": "best Rank-1 of the periodic evaluations on the TEST set",
        }
        state.model.load_state_dict(state.best["state_dict"])
    key = config.key()
    weights = {"state_dict": state.model.state_dict(), "config": config.to_dict(), "key": key}
    atomic_torch_save(weights, run_folder.model(out_dir))
    return {
        "key": key,
        "config": config.to_dict(),
        "metrics": metrics,
        "protocol": dict(getattr(dataset, "protocol", {}) or {}),
        "dataset": dataset_summary(dataset),
        "epochs_done": config.epochs,
        "wall_time_s": state.wall_before + time.perf_counter() - started,
        "device": device_name(device),
        "torch": torch.__version__,
        "seed": config.seed,
        "commit": git_commit(),
        "machine": machine_info(),
        "selection": selection,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(result_extra or {}),
    }


def train_one_epoch(
    config: Config,
    state: TrainState,
    loader,
    device,
    epoch: int,
    steps: int,
    *,
    progress: bool = False,
    joint=None,
    reference=None,
    start=None,
    stop=None,
    events=None,
) -> dict:
    """Run `steps` optimisation steps of ``state``'s model; return the epoch's mean loss parts and throughput.

    ``joint``: the DistributedDataParallel module of a run on several processes (see train_step);
    losses are then those of the global batch and ``clips_per_s`` counts every rank's clips.
    ``reference``: each loss term's first-epoch mean (:func:`divergence_check`); None in the first epoch, whose
    first step's values stand in for it.
    ``start``: the epoch so far, from a checkpoint taken in its middle (``partial`` of :class:`StopAtStep`):
    its first ``start["step"]`` batches are skipped and the RNG states are set to that step's.
    ``stop``: called after every step; a signal name it returns ends the epoch there with :class:`StopAtStep`.
    ``events``: a :class:`grl.engine.events.EventLog` that gets every step's loss terms."""
    seed_everything(epoch_seed(config.seed, epoch))
    sampler = getattr(loader, "batch_sampler", None)
    for candidate in (sampler, getattr(loader, "sampler", None)):
        if hasattr(candidate, "set_epoch"):
            candidate.set_epoch(epoch)
            break
    model, objective = state.model, state.objective
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
        set_rng_states(start["rng"])
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
                    config, model, objective, state.optimizer, state.scaler, clips, pids, device, **extra
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
                        "rng": get_rng_states(),
                    }
                    raise StopAtStep(signal_name, partial)
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


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("mAP", "rank1", "rank5", "rank10", "rank20") if k in metrics}
