"""Model step benchmark: ``python -m grl.bench.model [--quick]``.

Prints, for the paper configuration (ResNet-50 from scratch, 256x128, T=8, batch 4 clips), the
same at 128x64, and the CPU default (tiny backbone, 64x32, batch 16, T=8):

* training step time (forward + losses + backward + SGD; best of a few), inference time per clip,
  peak memory;
* the GRL heads' share (GCE + TRL + pooling + losses, timed with the backbone output
  precomputed) of the step time against their share of the FLOPs (FlopCounterMode);
* achieved GFLOP/s of the step (FLOPs counted by FlopCounterMode) as a percentage of THIS
  machine's matmul peak (a 4096^2 matmul, measured just before and after the row): a figure
  that carries across machines, unlike a step time. Goal: the paper-size
  ResNet-50 step at >= 75 % of the fp32 peak. Also against matmuls run right after each step;
* page faults and the kernel's share of the CPU time per step, and the paper size once with glibc's
  default allocator (freed memory unmapped) against the trainer's grl.utils.keep_freed_memory();
* the paper size again with the model in channels_last memory format (same arithmetic; the
  trainer uses it on CUDA only), and with bf16 autocast on top (other numerics: compared with the
  bf16 matmul peak, and not what any profile trains with);
* parameter counts per module.

Not a test: numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from grl.config import Config
from grl.engine.build import build_optimizer, build_scheduler, build_training
from grl.engine.trainer import train_step
from grl.models import count_parameters
from grl.utils import keep_freed_memory, resolve_device, seed_everything

RELEASE_PARAMS_M = (51.6, 3.2)  # the authors' release: model, plus its pooling/verification head
GOAL_PEAK_SHARE = 0.75  # the paper-size ResNet-50 step, as a share of the machine's fp32 matmul peak
NUM_IDS = 625  # MARS train identities: sizes the OIM lookup tables as in the paper


def paper_config(height: int = 256, width: int = 128, device: str = "cpu") -> Config:
    return Config(
        backbone="resnet50",
        pretrained=False,
        height=height,
        width=width,
        seq_len=8,
        batch_size=4,
        device=device,
        amp=False,
        channels_last=False,
    )


def cpu_config(device: str = "cpu") -> Config:
    return Config(
        backbone="tiny",
        pretrained=False,
        height=64,
        width=32,
        seq_len=8,
        batch_size=16,
        device=device,
        amp=False,
        channels_last=False,
    )


class _FakeDataset:
    num_train_ids = NUM_IDS


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(config: Config, device: torch.device):
    half = config.batch_size // 2
    clips = torch.randn(config.batch_size, config.seq_len, 3, config.height, config.width, device=device)
    pids = torch.arange(half, device=device).repeat(2)  # probes and their same-id partners
    return clips, pids


def _timed(fn, device, reps: int) -> float:
    """Mean seconds of fn() over reps calls."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / reps


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; process-wide peak


def measure_matmul_peak(device: torch.device, n: int = 4096, reps: int = 3, dtype=torch.float32) -> float:
    """GFLOP/s of the fastest of ``reps`` n x n matmuls in ``dtype`` (the machine's practical peak)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    seconds = min(_timed(lambda: a @ b, device, 1) for _ in range(reps))
    return 2 * n**3 / seconds / 1e9


def matmul_throughput(device: torch.device, seconds: float, n: int = 4096, dtype=torch.float32) -> float:
    """Sustained GFLOP/s of back-to-back n x n matmuls for about ``seconds`` (at least one).

    Taken right after each timed step, for as long as the step took, so that step and matmul see much
    the same neighbours on a shared machine (README "Benchmarks": it is no steadier in practice)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    out = a @ b  # warm-up
    _sync(device)
    count, t0 = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - t0 < seconds:
        torch.mm(a, b, out=out)
        _sync(device)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


def _flops_by_part(model, objective, clips, pids) -> tuple[float, float]:
    """(total FLOPs, backbone FLOPs) of one forward + backward, counted by FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = objective(model(clips), pids)
        loss.backward()
    counts = counter.get_flop_counts()
    total = sum(counts.get("Global", {}).values())
    backbone = sum(sum(v.values()) for k, v in counts.items() if k.split(".")[-1] == "backbone")
    model.zero_grad(set_to_none=True)
    objective.zero_grad(set_to_none=True)
    return float(total), float(backbone)


def bench_config(
    config: Config,
    *,
    warmup: int,
    reps: int,
    infer_reps: int,
    channels_last: bool = False,
    bf16: bool = False,
    keep_memory: bool = True,
) -> dict:
    """Step / head / inference timings, FLOPs and memory of one configuration.

    ``channels_last``: the model in channels_last memory format (same arithmetic). ``bf16``: every
    part under bf16 autocast (other numerics). ``keep_memory``: grl.utils.keep_freed_memory(), as the
    trainer does (process-wide: run a row without it in a fresh process). Times are the best of
    ``reps`` (steadier than a mean on a shared machine); each timed step is followed by as long a
    matmul (``matmul_throughput``) for the step's share of the machine measured side by side."""
    device = resolve_device(config.device)
    if keep_memory and device.type == "cpu":
        keep_freed_memory()
    seed_everything(0)
    model, objective = build_training(config, _FakeDataset(), device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(config, model, objective)
    build_scheduler(config, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    clips, pids = _batch(config, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cast = lambda: torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()  # noqa: E731

    def best(fn, n):
        return min(_timed(fn, device, 1) for _ in range(n))

    def step():
        with cast():
            train_step(config, model, objective, optimizer, scaler, clips, pids, device)

    with cast():
        total_flops, backbone_flops = _flops_by_part(model, objective, clips, pids)  # doubles as a warm-up
    for _ in range(max(warmup - 1, 0)):
        step()
    precision = torch.bfloat16 if bf16 else torch.float32
    steps, side_by_side, faults, system_s, cpu_s = [], [], 0, 0.0, 0.0
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_SELF)
        steps.append(_timed(step, device, 1))
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults += after.ru_minflt - before.ru_minflt
        system_s += after.ru_stime - before.ru_stime
        cpu_s += after.ru_stime - before.ru_stime + after.ru_utime - before.ru_utime
        side_by_side.append(total_flops / steps[-1] / 1e9 / matmul_throughput(device, steps[-1], dtype=precision))
    step_s = min(steps)

    # Heads alone: the backbone's output precomputed, everything after it (GCE, TRL, pooling,
    # losses, their backward down to the frame maps) timed.
    with torch.no_grad(), cast():
        maps = model.frame_maps(clips)

    def head_step():
        x = maps.detach().requires_grad_(True)
        model.frame_maps = lambda _clips: x
        try:
            with cast():
                loss, _ = objective(model(clips), pids)
        finally:
            del model.frame_maps
        loss.backward()
        model.zero_grad(set_to_none=True)
        objective.zero_grad(set_to_none=True)

    head_step()
    head_s = best(head_step, reps)

    model.eval()
    with torch.no_grad(), cast():
        model(clips)
        infer_s = best(lambda: model(clips), infer_reps)
    params = count_parameters(model)
    params["objective"] = sum(p.numel() for p in objective.parameters())
    return {
        "config": config,
        "layout": ("channels_last" if channels_last else "contiguous")
        + (", bf16 autocast" if bf16 else ", fp32")
        + ("" if keep_memory or device.type != "cpu" else ", freed memory unmapped"),
        "step_s": step_s,
        "head_s": head_s,
        "infer_ms_per_clip": infer_s / config.batch_size * 1e3,
        "peak_mb": _peak_memory_mb(device),
        "gflop_step": total_flops / 1e9,
        "head_flop_share": 1 - backbone_flops / total_flops if total_flops else float("nan"),
        "gflops": total_flops / step_s / 1e9,
        "side_by_side_share": sorted(side_by_side)[len(side_by_side) // 2],
        "faults_per_step": faults / reps,  # minor page faults: memory the kernel zero-fills
        "system_share": system_s / max(cpu_s, 1e-9),  # of the steps' CPU time, spent in the kernel
        "params": params,
    }


def _bench_in_child(config: Config, kwargs: dict, threads: int) -> dict:
    torch.set_num_threads(threads)
    return bench_config(config, **kwargs)


def profile_step(config: Config, top: int = 12) -> str:
    """torch.profiler table of one training step (where the time goes)."""
    device = resolve_device(config.device)
    keep_freed_memory()
    model, objective = build_training(config, _FakeDataset(), device)
    optimizer = build_optimizer(config, model, objective)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    clips, pids = _batch(config, device)
    train_step(config, model, objective, optimizer, scaler, clips, pids, device)
    with torch.profiler.profile() as prof:
        train_step(config, model, objective, optimizer, scaler, clips, pids, device)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def _row(label: str, r: dict) -> str:
    c = r["config"]
    return (
        f"| {label} | {c.height}x{c.width} | {c.batch_size}x{c.seq_len} | {r['layout']} | {r['step_s']:.3f} | "
        f"{r['infer_ms_per_clip']:.1f} | {r['peak_mb']:.0f} | {100 * r['head_s'] / r['step_s']:.1f}% | "
        f"{100 * r['head_flop_share']:.1f}% | {r['gflop_step']:.1f} | {r['gflops']:.1f} | "
        f"{100 * r['peak_share']:.0f}% of {r['matmul_peak']:.0f} | {100 * r['side_by_side_share']:.0f}% | "
        f"{r['faults_per_step']:,.0f} | {100 * r['system_share']:.0f}% |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grl.bench.model", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the CPU default configuration (seconds)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of the paper-size step")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device: {device}  threads: {torch.get_num_threads()}  torch {torch.__version__}")

    paper = dict(warmup=1, reps=2, infer_reps=1)
    jobs = [("CPU default (tiny)", cpu_config(args.device), dict(warmup=2, reps=5, infer_reps=5))]
    if not args.quick:
        big = paper_config(device=args.device)
        jobs += [
            ("ResNet-50 @128x64", paper_config(128, 64, args.device), paper),
            ("ResNet-50 paper size", big, {**paper, "keep_memory": False}),
            ("ResNet-50 paper size", big, paper),
            ("ResNet-50 paper size", big, {**paper, "channels_last": True}),
            ("ResNet-50 paper size", big, {**paper, "channels_last": True, "bf16": True}),
        ]
    # One fresh process per configuration, so that its peak RSS is its own; the matmul peak in the row's
    # precision just before and after it (the best of the two), so that a busy spell shows in both.
    ctx = multiprocessing.get_context("spawn")
    runs = []
    for label, config, kwargs in jobs:
        precision = torch.bfloat16 if kwargs.get("bf16") else torch.float32
        peak = measure_matmul_peak(device, dtype=precision)
        with ctx.Pool(1) as pool:
            r = pool.apply(_bench_in_child, (config, kwargs, torch.get_num_threads()))
        r["matmul_peak"] = max(peak, measure_matmul_peak(device, dtype=precision))
        r["peak_share"] = r["gflops"] / r["matmul_peak"]
        runs.append((label, r))
    print()
    print(
        "| config | input | batch (clips x T) | layout, precision | step s | infer ms/clip | peak MB | heads: time | "
        "heads: FLOPs | GFLOP/step | GFLOP/s | of the matmul peak (GFLOP/s) | of matmuls side by side | "
        "page faults/step | system time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, r in runs:
        print(_row(label, r))
    goal = [
        r
        for label, r in runs
        if r["config"].backbone == "resnet50" and r["config"].height == 256 and r["layout"].endswith("fp32")
    ]
    met = ", ".join(
        f"{r['layout'].split(',')[0]} {100 * r['peak_share']:.0f}% "
        f"({'met' if r['peak_share'] >= GOAL_PEAK_SHARE else 'not met'})"
        for r in goal
    )
    print(
        f"\ngoal: the ResNet-50 training step at 256x128 at >= {100 * GOAL_PEAK_SHARE:.0f}% of this machine's "
        f"fp32 matmul peak{': ' + met if met else ' (not measured with --quick)'}"
    )
    unmapped = next((r for _, r in runs if r["layout"].endswith("unmapped")), None)
    kept = next(
        (r for _, r in runs if unmapped and r["config"] == unmapped["config"] and r["layout"] == "contiguous, fp32"),
        None,
    )
    if kept:
        print(
            f"keeping freed memory (grl.utils.keep_freed_memory, on in every training): the paper-size step "
            f"{unmapped['step_s'] / kept['step_s']:.2f}x faster, {unmapped['faults_per_step']:,.0f} -> "
            f"{kept['faults_per_step']:,.0f} page faults per step"
        )
    print(
        "matmul peak: the fastest 4096^2 matmul in the row's precision (fp32; bf16 for the bf16 row), measured "
        "just before and after the row; step s: the best of the timed steps; GFLOP: FlopCounterMode"
    )
    print(
        "of matmuls side by side: the median (the upper one of an even count) over the timed steps of the step's "
        "GFLOP/s over that of 4096^2 matmuls run right after it for as long (the same neighbours on a shared "
        "machine; still noisy: compare rows of one run)"
    )
    print(
        "bf16 autocast changes the numerics: no profile trains with it; channels_last keeps them (the trainer "
        "uses it on CUDA only)"
    )
    print(
        "peak MB: peak RSS of a fresh process running only that row (incl. ~0.4 GB of torch itself) on CPU; "
        "max allocated on CUDA"
    )
    print("\nparameters (M) per module:")
    for label, r in runs[:2]:
        parts = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in r["params"].items())
        print(f"  {label}: {parts}")
    print(f"  release: {RELEASE_PARAMS_M[0]} model + {RELEASE_PARAMS_M[1]} pooling/verification head")
    if args.profile and not args.quick:
        print(profile_step(paper_config(device=args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
