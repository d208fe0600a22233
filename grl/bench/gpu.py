"""The GPU path, measured: ``python -m grl.bench.gpu [--tiny] [--gpus N] [--steps N] [--warmup N]``.

For the ``paper`` profile's configuration (grl.experiments: ResNet-50, 256x128, T=8, its batch; the GRL
run on MARS, ImageNet weights not loaded -- the same arithmetic) it prints:

* per variant -- fp32 / bf16 autocast x contiguous / channels_last, each built and stepped the way the
  trainer does (grl.engine.build.build_training, train_step) -- the step time (median of the timed steps
  after the warm-up, torch.cuda.synchronize around each), clips/s, the FLOPs of one step
  (FlopCounterMode over one forward + backward: convolutions and matmuls, the SGD update and
  elementwise ops not counted), the achieved TFLOP/s against the card's dense bf16 peak (a table of
  known cards; an unknown card is compared with a measured large bf16 matmul instead) and the peak
  memory (torch.cuda.max_memory_allocated);
* the train loader's clips/s at that size (fake JPEG tracklets stored at the output size, as MARS's
  are) with the configured workers and pinned memory, against what the step consumes
  (batch / step time of the variant the trainer runs): is loading the bottleneck?
* the projected time of one MARS epoch (steps from grl.data.sampling.PairedBatchSampler over MARS's
  8298 train tracklets) and of the whole paper profile (its runs from grl.experiments.runs_for), on 1 GPU
  and on N (``--gpus``; ``reproduce --jobs N`` runs N at once, so the profile divides by N).

Without CUDA (or with ``--tiny``) it runs the same measurements at tiny sizes (tiny backbone, 32x16,
a few steps) in seconds; the columns only a GPU can fill read "n/a (no CUDA)".

Not a test: numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from grl.bench.projection import (
    TRAIN_SIZES,
    dense_bf16_peak,
    human,
    loader_verdict,
    plan_profile,
    project,
)
from grl.config import Config

NO_CUDA = "n/a (no CUDA)"
GOAL_PEAK_SHARE = 0.40  # docs/benchmarks.md: the training step at >= 40 % of the card's dense bf16 peak
TINY = {"backbone": "tiny", "height": 32, "width": 16}


# ---- measurements ----------------------------------------------------------------------------------


def bench_config(tiny: bool, device: torch.device, profile: str = "paper") -> Config:
    """The profile's GRL run on MARS, without loading ImageNet weights (same arithmetic); ``tiny``: tiny sizes."""
    from grl.experiments import get_profile

    config = get_profile(profile).config("grl", "mars").replace(pretrained=False, device=device.type)
    return config.replace(**TINY) if tiny else config


class FakeTrainSet:
    num_train_ids = TRAIN_SIZES["mars"][0]  # sizes the OIM lookup tables as MARS's


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_step_flops(step_loss, zero_grad=None) -> dict:
    """FLOPs (FlopCounterMode: convolutions and matmuls) of ``loss = step_loss(); loss.backward()``:
    ``{"forward", "backward", "total"}``."""
    with FlopCounterMode(display=False) as forward:
        loss = step_loss()
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    if zero_grad is not None:
        zero_grad()
    f, b = float(forward.get_total_flops()), float(backward.get_total_flops())
    return {"forward": f, "backward": b, "total": f + b}


def measure_variant(config: Config, device: torch.device, *, warmup: int, steps: int) -> dict:
    """Step time (median of ``steps`` after ``warmup``), FLOPs and peak memory of ``config`` stepped as the trainer
    steps it. On CPU, where the trainer uses neither, ``config.amp`` / ``config.channels_last`` are applied here
    (bf16 autocast around the step, the model in channels_last) so that the same paths run."""
    from grl.engine.build import build_optimizer, build_training
    from grl.engine.features import amp_dtype
    from grl.engine.trainer import train_step
    from grl.utils import seed_everything

    seed_everything(0)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model, objective = build_training(config, FakeTrainSet(), device)  # channels_last on CUDA when config.channels_last
    if device.type != "cuda" and config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(config, model, objective)
    dtype = amp_dtype(device) if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and config.amp and dtype == torch.float16)
    # On CUDA train_step's autocast_context applies config.amp; on CPU this outer context stands in for it.
    cast = (
        (lambda: torch.autocast("cpu", dtype=dtype)) if device.type != "cuda" and config.amp else contextlib.nullcontext
    )
    half = config.batch_size // 2
    gen = torch.Generator().manual_seed(0)
    clips = torch.randn(config.batch_size, config.seq_len, 3, config.height, config.width, generator=gen)
    clips = clips.to(device, config.torch_dtype)  # on the device already: the step alone (loading is measured apart)
    pids = torch.arange(half).repeat(2).to(device)  # probes and their same-identity partners

    def step_loss():
        with (
            cast(),
            torch.autocast("cuda", dtype=dtype) if device.type == "cuda" and config.amp else contextlib.nullcontext(),
        ):
            loss, _ = objective(model(clips), pids)
        return loss

    def zero():
        model.zero_grad(set_to_none=True)
        objective.zero_grad(set_to_none=True)

    model.train()
    objective.train()
    flops = count_step_flops(step_loss, zero)

    nan = False

    def step():
        nonlocal nan
        with cast():
            value, _ = train_step(config, model, objective, optimizer, scaler, clips, pids, device)
            if value != value:  # a NaN loss: timed all the same (same arithmetic), and reported
                nan = True

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    model = objective = optimizer = None  # frees the memory before the next variant (the closures above hold the names)
    return {
        "precision": (str(dtype).replace("torch.", "") + " autocast") if config.amp else "fp32",
        "layout": "channels_last" if config.channels_last else "contiguous",
        "amp": config.amp,
        "channels_last": config.channels_last,
        "step_s": step_s,
        "steps": steps,
        "clips_s": config.batch_size / step_s,
        "flops": flops,
        "tflops": flops["total"] / step_s / 1e12,
        "peak_bytes": peak,
        "nan": nan,
    }


def measure_matmul_tflops(device: torch.device, n: int = 8192, reps: int = 5) -> float:
    """TFLOP/s of the fastest of ``reps`` n x n bf16 matmuls (the reference for a card of unknown peak)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e12


def measure_loader(config: Config, batches: int, workers: int) -> dict:
    """clips/s of grl.data.loader.build_train_loader on fake JPEG tracklets stored at the output size, after one
    warm-up batch (worker start-up), with ``workers`` workers and the loader's own pinned-memory choice."""
    from grl.bench.data import write_fake_tracklets
    from grl.data.loader import build_train_loader

    cfg = config.replace(num_workers=workers, steps_per_epoch=batches + 1)
    with tempfile.TemporaryDirectory() as root:
        dataset = write_fake_tracklets(root, cfg.height, cfg.width, num_ids=max(8, cfg.batch_size), frames=16)
        loader = build_train_loader(dataset, cfg, seed=0)
        it = iter(loader)
        next(it)
        t0 = time.perf_counter()
        clips = sum(batch[0].shape[0] for batch in it)
        wall = time.perf_counter() - t0
        pinned = bool(loader.pin_memory)
    return {"workers": workers, "pinned": pinned, "batches": batches, "clips_s": clips / wall}


# ---- the table -------------------------------------------------------------------------------------


def run(
    *,
    tiny: bool | None = None,
    gpus: int | None = None,
    warmup: int | None = None,
    steps: int | None = None,
    loader_batches: int | None = None,
    workers: int | None = None,
    profile: str = "paper",
) -> dict:
    """Measure every variant, the loader and the projections; returns what :func:`format_result` prints."""
    from grl.utils import resolve_device

    device = resolve_device("auto")
    cuda = device.type == "cuda"
    tiny = (not cuda) if tiny is None else tiny
    config = bench_config(tiny, device, profile)
    warmup = (5 if cuda and not tiny else 1) if warmup is None else warmup
    steps = (20 if cuda and not tiny else 2) if steps is None else steps
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = (min(config.num_workers, cores) if tiny else config.num_workers) if workers is None else workers
    loader_batches = (max(30, 8 * workers) if not tiny else 3) if loader_batches is None else loader_batches
    visible = torch.cuda.device_count() if cuda else 0
    gpus = max(1, visible) if gpus is None else gpus

    variants = [
        measure_variant(config.replace(amp=amp, channels_last=cl), device, warmup=warmup, steps=steps)
        for amp in (False, True)
        for cl in (False, True)
    ]
    # The variant the trainer runs on this device: the profile's amp / channels_last on CUDA, neither elsewhere.
    trainer = next(
        v
        for v in variants
        if (v["amp"], v["channels_last"]) == ((config.amp, config.channels_last) if cuda else (False, False))
    )
    name = torch.cuda.get_device_name(device) if cuda else None
    known = dense_bf16_peak(name) if cuda else None
    matmul = measure_matmul_tflops(device) if cuda else None
    peak = known[1] if known else None
    for v in variants:
        v["peak_share"] = v["tflops"] / peak if peak else None
        v["matmul_share"] = v["tflops"] / matmul if matmul and not known else None
    loader = measure_loader(config, loader_batches, workers)
    verdict = loader_verdict(loader["clips_s"], trainer["step_s"], config.batch_size, workers)
    effective = max(trainer["step_s"], config.batch_size / loader["clips_s"])  # the slower of compute and loading
    runs = plan_profile(profile)
    return {
        "device": name or str(device),
        "cuda": cuda,
        "tiny": tiny,
        "config": config,
        "known_peak": known,
        "matmul_tflops": matmul,
        "variants": variants,
        "trainer": trainer,
        "loader": loader,
        "verdict": verdict,
        "effective_step_s": effective,
        "projection": project(runs, effective, config.seq_len, config.batch_size, gpus),
        "visible_gpus": visible,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def format_result(r: dict) -> str:
    c, cuda = r["config"], r["cuda"]
    size = "TINY sizes (not the paper's: no CUDA here, or --tiny)" if r["tiny"] else "the paper's sizes"
    lines = [
        f"device: {r['device']}  torch {r['torch']}  {r['date']}  threads: {torch.get_num_threads()}",
        f"config: {c.backbone} {c.height}x{c.width}, T={c.seq_len}, batch {c.batch_size} clips "
        f"(the {'paper'!r} profile's GRL run on MARS; {size})",
    ]
    if cuda and r["known_peak"]:
        ref = f"dense bf16 peak of the {r['known_peak'][0]}: {r['known_peak'][1]:.0f} TFLOP/s"
        lines.append(ref + f" (measured 8192^2 bf16 matmul: {r['matmul_tflops']:.0f} TFLOP/s)")
        share_head = f"of dense bf16 peak ({r['known_peak'][1]:.0f})"
    elif cuda:
        lines.append(
            f"peak unknown for {r['device']!r}: compared with a measured 8192^2 bf16 matmul, "
            f"{r['matmul_tflops']:.0f} TFLOP/s"
        )
        share_head = f"of measured bf16 matmul ({r['matmul_tflops']:.0f})"
    else:
        share_head = "of dense bf16 peak"
    lines += [
        "",
        f"| precision | layout | step ms (median of {r['variants'][0]['steps']}) | clips/s | TFLOP/step | "
        f"TFLOP/s | {share_head} | peak memory GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in r["variants"]:
        share = v["peak_share"] if v["peak_share"] is not None else v["matmul_share"]
        share_text = f"{100 * share:.0f}%" if share is not None else NO_CUDA
        mem = f"{v['peak_bytes'] / 2**30:.1f}" if v["peak_bytes"] is not None else NO_CUDA
        mark = (" (trainer)" if v is r["trainer"] else "") + (" (loss NaN)" if v["nan"] else "")
        lines.append(
            f"| {v['precision']}{mark} | {v['layout']} | {1e3 * v['step_s']:.1f} | {v['clips_s']:.1f} | "
            f"{v['flops']['total'] / 1e12:.3f} | {v['tflops']:.3f} | {share_text} | {mem} |"
        )
    lines.append(
        "TFLOP/step: FlopCounterMode over one forward + backward (convolutions and matmuls; "
        f"backward {r['trainer']['flops']['backward'] / r['trainer']['flops']['forward']:.2f}x the forward); "
        "the SGD update and elementwise ops not counted."
    )
    if cuda:
        bf16 = [v for v in r["variants"] if v["amp"]]
        best = max(bf16, key=lambda v: v["tflops"])
        share = best["peak_share"] if best["peak_share"] is not None else best["matmul_share"]
        lines.append(
            f"goal: >= {100 * GOAL_PEAK_SHARE:.0f}% of the dense bf16 peak: best bf16 variant "
            f"({best['layout']}) {100 * share:.0f}% -> {'met' if share >= GOAL_PEAK_SHARE else 'NOT met'}"
        )
    if any(v["nan"] for v in r["variants"]):
        lines.append(
            "loss NaN: timed all the same. Seen on CPU only, under bf16 autocast: on CPUs with AMX, torch 2.14.1's "
            "oneDNN bf16 convolution (brg_conv_fwd:avx10_1_512_amx) gets a 3x3 stride-2 convolution of a 4x2 "
            "map wrong (README, 'The GPU path'; ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 avoids it)."
        )
    if not cuda:
        lines.append(
            "bf16 autocast and channels_last on CPU are applied by the benchmark (the trainer uses them on "
            "CUDA only); the shares of the card's peak and the peak memory need CUDA."
        )

    ld, vd = r["loader"], r["verdict"]
    lines += [
        "",
        "| train loader | workers | pinned memory | clips/s | step consumes clips/s | verdict |",
        "|---|---|---|---|---|---|",
        f"| {c.height}x{c.width}, T={c.seq_len}, batch {c.batch_size} | {ld['workers']} | "
        f"{('yes' if ld['pinned'] else 'no') if cuda else NO_CUDA} | {ld['clips_s']:.1f} | "
        f"{vd['needed_clips_s']:.1f} | {vd['text']} |",
        f"loader: fake JPEG tracklets stored at {c.height}x{c.width} (as MARS's frames are), {ld['batches']} "
        "batches after one warm-up batch; step consumes: batch / step time of the (trainer) variant. "
        "With --jobs N on one machine the N loaders share its cores.",
    ]

    p = r["projection"]
    n = p["gpus"]
    lines += [
        "",
        f"| projection (one step = {1e3 * r['effective_step_s']:.1f} ms: the slower of the (trainer) "
        "step and loading a batch) | steps | 1 GPU | " + f"{n} GPU{'s' if n > 1 else ''} |",
        "|---|---|---|---|",
        f"| one MARS epoch (8298 tracklets // (batch/2)) | {p['mars_steps']} | {human(p['mars_epoch_s'])} | "
        f"{human(p['mars_epoch_n_s'])} (torchrun, ideal scaling) |",
        f"| the {'paper'!r} profile: {p['runs']} trainings (runs_for) | {p['steps']} | {human(p['total_s'])} | "
        f"{human(p['total_n_s'])} (--jobs {n}: total / {n}); {human(p['makespan_s'])} with the runs started in "
        "the batch's order |",
        "projection: training steps only (no evaluation, checkpoints or start-up); every run at the GRL step "
        "scaled by T/8, the Baseline's cheaper step not discounted.",
    ]
    if r["tiny"]:
        lines.append("TINY sizes: the projection shows the arithmetic, not the paper's time.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m grl.bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (automatic without CUDA): seconds")
    parser.add_argument("--gpus", type=int, default=None, help="N of the N-GPU projection (default: the visible GPUs)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per variant (5 on CUDA, 1 tiny)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (20 on CUDA, 2 tiny)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="loader workers (default: the profile's; tiny: at most the cores here)",
    )
    parser.add_argument("--loader-batches", type=int, default=None, help="timed loader batches")
    args = parser.parse_args(argv)
    for option in ("gpus", "steps", "workers", "warmup", "loader_batches"):
        value = getattr(args, option)
        low = 1 if option in ("gpus", "steps", "loader_batches") else 0
        if value is not None and value < low:
            parser.error(f"--{option.replace('_', '-')} must be >= {low}, got {value}")
    result = run(
        tiny=True if args.tiny else None,
        gpus=args.gpus,
        warmup=args.warmup,
        steps=args.steps,
        loader_batches=args.loader_batches,
        workers=args.workers,
    )
    print(format_result(result))
    return result


if __name__ == "__main__":
    main()
