"""Model step benchmark: ``python -m grl.bench.model [--quick]``.

Prints, for the paper configuration (ResNet-50 from scratch, 256×128, T=8, batch 4 clips —
the size the authors' release was timed at on this kind of machine) and the CPU default
(tiny backbone, 64×32, batch 16, T=8):

* training step time (forward + losses + backward + SGD), inference time per clip, peak memory;
* the GRL heads' share (GCE + TRL + pooling + losses, timed with the backbone output
  precomputed) of the step time against their share of the FLOPs (FlopCounterMode);
* achieved GFLOP/s against this machine's fp32 matmul peak (a 4096² matmul);
* channels_last vs contiguous for one 3×3 convolution; parameter counts per module.

Not a test: numbers depend on the machine and on whatever else runs on it.
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from grl.config import Config
from grl.engine.trainer import _build, build_optimizer, build_scheduler, train_step
from grl.models import count_parameters
from grl.utils import resolve_device, seed_everything

# The authors' release on this 2-core machine (measured by the lead; see the issue).
RELEASE_STEP_S = {(256, 128): 20.0, (128, 64): 4.2}
RELEASE_GFLOPS = 70.0
RELEASE_MATMUL_PEAK = 118.0
RELEASE_PARAMS_M = (51.6, 3.2)  # model, plus its pooling/verification head
TARGET_RATIO = 0.8
NUM_IDS = 625  # MARS train identities: sizes the OIM lookup tables as in the paper


def paper_config(height: int = 256, width: int = 128, device: str = "cpu") -> Config:
    return Config(backbone="resnet50", pretrained=False, height=height, width=width, seq_len=8, batch_size=4,
                  device=device, amp=False, channels_last=False)


def cpu_config(device: str = "cpu") -> Config:
    return Config(backbone="tiny", pretrained=False, height=64, width=32, seq_len=8, batch_size=16,
                  device=device, amp=False, channels_last=False)


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


def measure_matmul_peak(device: torch.device, n: int = 4096, reps: int = 3) -> float:
    """GFLOP/s of an n×n fp32 matmul (the machine's practical fp32 peak)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    seconds = _timed(lambda: a @ b, device, reps)
    return 2 * n**3 / seconds / 1e9


def measure_conv_layouts(device: torch.device, reps: int = 10) -> dict[str, float]:
    """ms of one 3×3 conv (64→64 channels, 32 frames of 64×32) forward, both memory layouts."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    x = torch.randn(32, 64, 64, 32, device=device)
    out = {}
    with torch.no_grad():
        for name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
            c, xi = conv.to(memory_format=fmt), x.contiguous(memory_format=fmt)
            c(xi)
            out[name] = _timed(lambda: c(xi), device, reps) * 1e3
    return out


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


def bench_config(config: Config, *, warmup: int, reps: int, infer_reps: int) -> dict:
    """Step / head / inference timings, FLOPs and memory of one configuration."""
    device = resolve_device(config.device)
    seed_everything(0)
    model, objective = _build(config, _FakeDataset(), device)
    optimizer = build_optimizer(config, model, objective)
    build_scheduler(config, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    clips, pids = _batch(config, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    total_flops, backbone_flops = _flops_by_part(model, objective, clips, pids)  # doubles as a warm-up
    for _ in range(max(warmup - 1, 0)):
        train_step(config, model, objective, optimizer, scaler, clips, pids, device)
    step_s = _timed(lambda: train_step(config, model, objective, optimizer, scaler, clips, pids, device), device, reps)

    # Heads alone: the backbone's output precomputed, everything after it (GCE, TRL, pooling,
    # losses, their backward down to the frame maps) timed.
    with torch.no_grad():
        maps = model.frame_maps(clips)

    def head_step():
        x = maps.detach().requires_grad_(True)
        model.frame_maps = lambda _clips: x
        try:
            loss, _ = objective(model(clips), pids)
        finally:
            del model.frame_maps
        loss.backward()
        model.zero_grad(set_to_none=True)
        objective.zero_grad(set_to_none=True)

    head_step()
    head_s = _timed(head_step, device, reps)

    model.eval()
    with torch.no_grad():
        model(clips)
        infer_s = _timed(lambda: model(clips), device, infer_reps)
    params = count_parameters(model)
    params["objective"] = sum(p.numel() for p in objective.parameters())
    return {
        "config": config,
        "step_s": step_s,
        "head_s": head_s,
        "infer_ms_per_clip": infer_s / config.batch_size * 1e3,
        "peak_mb": _peak_memory_mb(device),
        "gflop_step": total_flops / 1e9,
        "head_flop_share": 1 - backbone_flops / total_flops if total_flops else float("nan"),
        "gflops": total_flops / step_s / 1e9,
        "params": params,
    }


def _bench_in_child(config: Config, kwargs: dict, threads: int) -> dict:
    torch.set_num_threads(threads)
    return bench_config(config, **kwargs)


def profile_step(config: Config, top: int = 12) -> str:
    """torch.profiler table of one training step (where the time goes)."""
    device = resolve_device(config.device)
    model, objective = _build(config, _FakeDataset(), device)
    optimizer = build_optimizer(config, model, objective)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    clips, pids = _batch(config, device)
    train_step(config, model, objective, optimizer, scaler, clips, pids, device)
    with torch.profiler.profile() as prof:
        train_step(config, model, objective, optimizer, scaler, clips, pids, device)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def _row(label: str, r: dict, peak: float) -> str:
    c = r["config"]
    ref = RELEASE_STEP_S.get((c.height, c.width)) if c.backbone == "resnet50" else None
    vs = f"{r['step_s'] / ref:.2f}x of {ref:.1f}s" if ref else "-"
    return (
        f"| {label} | {c.height}x{c.width} | {c.batch_size}x{c.seq_len} | {r['step_s']:.3f} | {vs} | "
        f"{r['infer_ms_per_clip']:.1f} | {r['peak_mb']:.0f} | {100 * r['head_s'] / r['step_s']:.1f}% | "
        f"{100 * r['head_flop_share']:.1f}% | {r['gflop_step']:.1f} | {r['gflops']:.1f} ({100 * r['gflops'] / peak:.0f}% of peak) |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grl.bench.model", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the CPU default configuration (seconds)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of the paper-size step")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device: {device}  threads: {torch.get_num_threads()}  torch {torch.__version__}")
    peak = measure_matmul_peak(device)
    print(f"fp32 matmul peak (4096^2): {peak:.1f} GFLOP/s   (release reference machine: ~{RELEASE_MATMUL_PEAK:.0f})")
    conv = measure_conv_layouts(device)
    print(f"3x3 conv 64->64 on 32x64x64x32: contiguous {conv['contiguous']:.2f} ms, "
          f"channels_last {conv['channels_last']:.2f} ms ({conv['contiguous'] / conv['channels_last']:.2f}x)")

    jobs = [("CPU default (tiny)", cpu_config(args.device), dict(warmup=2, reps=5, infer_reps=5))]
    if not args.quick:
        jobs.append(("ResNet-50 @128x64", paper_config(128, 64, args.device), dict(warmup=1, reps=2, infer_reps=1)))
        jobs.append(("ResNet-50 paper size", paper_config(device=args.device), dict(warmup=1, reps=2, infer_reps=1)))
    # One fresh process per configuration, so that its peak RSS is its own.
    ctx = multiprocessing.get_context("spawn")
    runs = []
    for label, config, kwargs in jobs:
        with ctx.Pool(1) as pool:
            runs.append((label, pool.apply(_bench_in_child, (config, kwargs, torch.get_num_threads()))))
    print()
    print("| config | input | batch (clips x T) | step s | vs release | infer ms/clip | peak MB | heads: time | heads: FLOPs | GFLOP/step | GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, r in runs:
        print(_row(label, r, peak))
    print(f"\nrelease reference: ResNet-50 GRL step ~{RELEASE_STEP_S[(256, 128)]:.0f} s (4x8 clips, 256x128), "
          f"~{RELEASE_STEP_S[(128, 64)]:.1f} s at 128x64, ~{RELEASE_GFLOPS:.0f} GFLOP/s vs ~{RELEASE_MATMUL_PEAK:.0f} peak; "
          f"target step <= {TARGET_RATIO:.1f}x the release's")
    print("peak MB: peak RSS of a fresh process running only that row (incl. ~0.4 GB of torch itself) on CPU; "
          "max allocated on CUDA")
    print("\nparameters (M) per module:")
    for label, r in runs:
        parts = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in r["params"].items())
        print(f"  {label}: {parts}")
    print(f"  release: {RELEASE_PARAMS_M[0]} model + {RELEASE_PARAMS_M[1]} pooling/verification head")
    for label, r in runs:
        c = r["config"]
        ref = RELEASE_STEP_S.get((c.height, c.width)) if c.backbone == "resnet50" else None
        if ref and r["step_s"] > TARGET_RATIO * ref:
            print(f"\n{label}: step {r['step_s']:.1f} s is above the target {TARGET_RATIO * ref:.1f} s; profile:")
            print(profile_step(c))
    if args.profile and not args.quick:
        print(profile_step(paper_config(device=args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
