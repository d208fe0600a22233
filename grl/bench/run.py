"""Where one training run's time goes: ``python -m grl.bench.run [--profile cpu] [--experiment grl]
[--dataset mars] [--jobs 1] [--quick]``.

Times each part of one run of a profile -- the calls grl.engine.trainer.train and
grl.engine.features.evaluate_model make -- a few times, and extrapolates to the whole run
(Config.epochs x steps_per_epoch training steps, one evaluation at the end plus one every
eval_every epochs): nothing trains a whole run. Then projects the study: runs_for(profile)
runs of that cost, ``--jobs`` at once, the cores divided among them (as ``--jobs`` does).

Not a test: numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from unittest import mock

import numpy as np
import torch

from grl import run_folder

PARTS = (
    "kernel start + imports",
    "setup: dataset, model, optimizer",
    "frame reading: train",
    "frame reading: test",
    "transforms + batching",
    "training compute",
    "checkpoints + model file",
    "test feature extraction",
    "evaluation",
)


def _median_s(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _read(clips_dataset, paths):
    """One clip's resized uint8 frames, as the loader reads them: from the frame cache, else decoded."""
    from grl.data.datasets import read_frame
    from grl.data.transforms import frames_to_tensor

    if clips_dataset.frames is not None:
        return clips_dataset.frames.clip(paths)
    decoded = {p: read_frame(p) for p in dict.fromkeys(paths)}  # the loader decodes a repeated frame once
    return frames_to_tensor([decoded[p] for p in paths], clips_dataset.transform.height, clips_dataset.transform.width)


def _how_read(clips_dataset) -> str:
    return "frame cache (memory map)" if clips_dataset.frames is not None else "decode + resize (read_frame)"


def breakdown(
    profile: str = "cpu", experiment: str = "grl", dataset: str = "mars", *, jobs: int = 1, reps: int = 3, seed: int = 0
) -> dict:
    """Seconds of each part of one run (``parts``: {name: {"seconds", "how"}}), their ``total_s``, and the
    study's projection ``study_s`` = ``runs`` x ``total_s`` / ``jobs``. ``reps``: timed repetitions per part."""
    from grl.experiments import get_profile, runs_for
    from grl.utils import torch_threads

    config = get_profile(profile).config(experiment, dataset, seed=seed)
    threads = config.threads or max(1, _cores() // jobs)
    with torch_threads(threads):
        parts, notes = _measure(config, max(1, reps))
    total = sum(p["seconds"] for p in parts.values())
    runs = len(runs_for(profile))
    return {
        "profile": profile,
        "experiment": experiment,
        "dataset": dataset,
        "threads": threads,
        "jobs": jobs,
        "parts": parts,
        "total_s": total,
        "runs": runs,
        "study_s": runs * total / jobs,
        "notes": notes,
    }


def _measure(config, reps: int) -> tuple[dict, list[str]]:
    from grl.data import load_config_dataset
    from grl.data.loader import build_test_loader, build_train_loader
    from grl.data.sampling import rrs_indices
    from grl.engine import features
    from grl.engine.build import build_optimizer, build_scheduler, build_training
    from grl.engine.trainer import train_step
    from grl.models.pretrain import PretrainSpec, read_pretrained
    from grl.utils import atomic_torch_save, resolve_device, seed_everything

    parts, notes = {}, []
    device = resolve_device(config.device)
    B, T = config.batch_size, config.seq_len

    def part(name, seconds, how):
        parts[name] = {"seconds": float(seconds), "how": how}

    cmd = [sys.executable, "-c", "import grl.engine.trainer, torch"]
    kernel = min(
        _median_s(lambda: subprocess.run(cmd, check=True, capture_output=True), 1) for _ in range(min(reps, 2))
    )
    part(PARTS[0], kernel, "fresh `python -c 'import grl.engine.trainer, torch'` (no papermill/kernel overhead)")

    t0 = time.perf_counter()
    load_config_dataset(config)  # generates the data and builds the frame cache when missing: once per study
    notes.append(
        f"first dataset load (generates data / frame cache when missing; once per study): "
        f"{time.perf_counter() - t0:.1f} s, not in the run's total"
    )
    build = config
    if config.pretrained and config.backbone == "tiny":
        spec = PretrainSpec.from_config(config)
        if read_pretrained(spec.path(), spec) is None:  # made once per study by prepare_shared: not timed here
            build = config.replace(pretrained=False)
            notes.append(
                f"pretrained backbone {spec.path().name} not made yet (once per study, not timed): "
                "setup timed with an unpretrained one"
            )
    t0 = time.perf_counter()
    data = load_config_dataset(config)
    seed_everything(config.seed)
    model, objective = build_training(build, data, device)
    optimizer = build_optimizer(config, model, objective)
    build_scheduler(config, optimizer)
    loader = build_train_loader(data, config, config.seed)
    part(PARTS[1], time.perf_counter() - t0, "load_config_dataset + build_training + optimizer + train loader, once")

    steps = config.epochs * (config.steps_per_epoch or len(loader))
    evals = sum(
        1
        for e in range(config.epochs)
        if e + 1 == config.epochs or (config.eval_every > 0 and (e + 1) % config.eval_every == 0)
    )
    unique = list(dict.fromkeys(list(data.query) + list(data.gallery)))
    test = build_test_loader(unique, config, sampling=config.test_sampling, frames=getattr(data, "frame_cache", None))
    train_set, test_set = loader.dataset, test.dataset
    test_batches = len(test_set) / B  # clips of the test set, in batches (the last one smaller)

    # Frames: a batch of clips of the run's own tracklets, read the way its loaders read them.
    rng = np.random.default_rng(0)
    picks = rng.choice(len(train_set.tracklets), B)
    train_paths = [
        [t.frames[i] for i in rrs_indices(len(t.frames), T, True, rng, config.rrs_chunks)]
        for t in (train_set.tracklets[k] for k in picks)
    ]
    test_paths = [
        [test_set.tracklets[k].frames[i] for i in ids]
        for k, ids in (test_set.items[j] for j in rng.choice(len(test_set), B))
    ]
    read_train = _median_s(lambda: [_read(train_set, p) for p in train_paths], reps)
    part(PARTS[2], read_train * steps, f"{_how_read(train_set)}: a batch of {B} clips x {steps} steps")
    read_test = _median_s(lambda: [_read(test_set, p) for p in test_paths], reps)
    part(
        PARTS[3],
        read_test * test_batches * evals,
        f"{_how_read(test_set)}: a batch x {test_batches:.1f} batches x {evals} evaluation(s)",
    )

    raw_train = [_read(train_set, p) for p in train_paths]
    raw_test = [_read(test_set, p) for p in test_paths]
    gens = [torch.Generator().manual_seed(i) for i in range(B)]
    aug = _median_s(
        lambda: torch.stack([train_set.transform.transform_resized(c, g) for c, g in zip(raw_train, gens)]), reps
    )
    plain = _median_s(lambda: torch.stack([test_set.transform.transform_resized(c) for c in raw_test]), reps)
    part(
        PARTS[4],
        aug * steps + plain * test_batches * evals,
        "train augmentation / test normalisation + stack of a batch, x batches",
    )

    clips, pids, _ = next(iter(loader))
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    step = lambda: train_step(config, model, objective, optimizer, scaler, clips, pids, device)  # noqa: E731
    step()  # warm-up
    part(PARTS[5], _median_s(step, reps) * steps, f"train_step on one batch (median of {reps}) x {steps} steps")

    def state():
        return {
            "model": model.state_dict(),
            "objective": objective.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
        }

    with tempfile.TemporaryDirectory() as tmp:
        save = _median_s(lambda: atomic_torch_save(state(), run_folder.checkpoint(tmp)), reps)
    part(PARTS[6], save * (config.epochs + 1), f"atomic_torch_save of the run's state x {config.epochs} epochs + 1")

    batch = torch.stack([test_set.transform.transform_resized(c) for c in raw_test]).to(device, config.torch_dtype)
    model.eval()

    def forward():
        with torch.no_grad(), features.autocast_context(config, device):
            out = model(batch)
            return {name: out.test_feature(name) for name in config.test_features}

    dims = {name: f.shape[1] for name, f in forward().items()}
    part(
        PARTS[7],
        _median_s(forward, reps) * test_batches * evals,
        f"forward of a test batch x {test_batches:.1f} batches x {evals} evaluation(s)",
    )

    gen = torch.Generator().manual_seed(0)
    feats = {
        n: torch.nn.functional.normalize(torch.randn(len(unique), d, generator=gen, dtype=config.torch_dtype), dim=1)
        for n, d in dims.items()
    }
    with mock.patch.object(features, "extract_features", lambda *a, **k: feats):
        evaluation = _median_s(lambda: features.evaluate_model(model, data, config), reps)
    rerank = " + re-ranking" if config.rerank else ""
    part(
        PARTS[8],
        evaluation * evals,
        f"evaluate_model on random features ({len(feats)} feature(s){rerank}) x {evals} evaluation(s)",
    )
    return parts, notes


def format_breakdown(result: dict) -> str:
    total = result["total_s"]
    lines = [
        f"one {result['experiment']} run on {result['dataset']}, profile {result['profile']!r}, "
        f"{result['threads']} thread(s); timed a few steps / batches each and extrapolated to the whole run",
        "",
        "| part | seconds | share | how measured |",
        "|---|---|---|---|",
    ]
    for name, p in result["parts"].items():
        lines.append(f"| {name} | {p['seconds']:.2f} | {100 * p['seconds'] / total:.1f}% | {p['how']} |")
    lines.append(f"| total | {total:.1f} | 100% | sum of the parts |")
    lines += [
        "",
        *[f"note: {n}" for n in result["notes"]],
        f"study: {result['runs']} runs of profile {result['profile']!r} x {total:.1f} s / {result['jobs']} "
        f"job(s) = {result['study_s']:.0f} s ({result['study_s'] / 60:.1f} min), assuming every run costs "
        "what this one does (other experiments and datasets differ)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m grl.bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=("quick", "cpu"))
    parser.add_argument("--experiment", default="grl")
    parser.add_argument("--dataset", default="mars")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once; the cores are divided among them")
    parser.add_argument("--quick", action="store_true", help="one timed repetition per part instead of three")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    result = breakdown(args.profile, args.experiment, args.dataset, jobs=args.jobs, reps=1 if args.quick else 3)
    print(format_breakdown(result))
    return result


if __name__ == "__main__":
    main()
