"""The projected time of ``python -m grl reproduce --profile paper`` (74 trainings) on 1 and on N GPUs, built
from parts measured or counted here: ``python -m grl.bench.paper_time [--gpus 1 8] [--share 0.3 0.5]
[--loader-clips-per-worker R] [--card "H100 SXM"]``.

- **Trainings and steps**: counted (grl.bench.projection.plan_profile: every run of the profile, its epochs and
  its steps from the dataset's train set; Table 4's T = 4, 6, 10 runs scaled by T / 8).
- **FLOPs** of one training step (batch 16 × T=8 at 256×128, forward + backward) and of one test clip: counted
  here by ``FlopCounterMode`` (convolutions and matmuls), which does not depend on the machine.
- **The GPU's rate**: the card's dense bf16 peak (grl.bench.projection's table) × a share of it. The share is an
  **assumption**: no GPU has been lent to this project yet, so no step has been timed on one
  (``python -m grl.bench gpu`` measures it where one is).
- **The loader**: clips per second of one worker, measured on our CPU by ``python -m grl.bench.realsize``,
  × the profile's 4 workers; a step takes the longer of the GPU's time and the loader's.
- **Evaluation**: each run's test set once at the end (the profile's RRS test: one T-frame clip per tracklet;
  a dense test reads every frame), at the same GPU rate. Checkpoints and start-up are not counted.
"""

from __future__ import annotations

import argparse
import math

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from grl.bench.projection import DENSE_BF16_PEAKS, human, plan_profile, project

# The test sets' sizes (tracklets to encode, frames): MARS's 11,310 gallery tracklets hold its 1,980 queries;
# iLIDS-VID and PRID2011 test half of their persons, two cameras each (frames: about the datasets' mean lengths).
TEST_SETS = {"mars": (11_310, 681_089), "ilidsvid": (300, 300 * 73), "prid2011": (178, 178 * 100)}


def count_flops() -> dict:
    """FLOPs of the paper profile's GRL training step on MARS and of one test clip (CPU, float32, no weights
    loaded: the same arithmetic)."""
    from grl.bench.gpu import FakeTrainSet, bench_config, count_step_flops
    from grl.engine.build import build_training

    config = bench_config(tiny=False, device=torch.device("cpu"))
    model, objective = build_training(config, FakeTrainSet(), torch.device("cpu"))
    clips = torch.randn(config.batch_size, config.seq_len, 3, config.height, config.width)
    pids = torch.arange(config.batch_size // 2).repeat(2)
    model.train()
    objective.train()
    step = count_step_flops(lambda: objective(model(clips), pids)[0])["total"]
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clips[:1])
    return {"step": step, "clip": float(counter.get_total_flops()), "batch": config.batch_size, "T": config.seq_len}


def projected(flops: dict, share: float, peak_tflops: float, gpus: int, loader_clips_per_worker: float | None,
              workers: int = 4) -> dict:  # fmt: skip
    """Seconds of the paper profile on ``gpus`` GPUs at ``share`` of the peak, with the profile's ``workers`` loader
    workers per run and with as many as keep the GPU fed: its trainings (grl.bench.projection.project, the runs
    started in the batch's order) and one test per run (RRS, the profile's; or dense)."""
    rate = share * peak_tflops * 1e12  # FLOP/s
    gpu_step = flops["step"] / rate
    runs = plan_profile("paper")
    per_frame = flops["clip"] / flops["T"] / rate
    rrs = sum(TEST_SETS[r.dataset][0] * r.seq_len for r in runs) * per_frame / gpus
    dense = sum(TEST_SETS[r.dataset][1] for r in runs) * per_frame / gpus
    row = {"share of peak": share, "gpus": gpus, "GPU step (s)": gpu_step}
    fed = project(runs, gpu_step, flops["T"], flops["batch"], gpus)["makespan_s"]
    if loader_clips_per_worker:
        loader_step = flops["batch"] / (loader_clips_per_worker * workers)
        row[f"loader step, {workers} workers (s)"] = loader_step
        row["workers to keep it fed"] = math.ceil(flops["batch"] / gpu_step / loader_clips_per_worker)
        slow = project(runs, max(gpu_step, loader_step), flops["T"], flops["batch"], gpus)["makespan_s"]
        row[f"with {workers} workers (RRS test)"] = slow + rrs
    row["loader keeping up (RRS test)"] = fed + rrs
    row["loader keeping up (dense test)"] = fed + dense
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--share", type=float, nargs="+", default=[0.3, 0.5], help="assumed share of the bf16 peak")
    parser.add_argument("--card", default="H100 SXM", help="a card of grl.bench.projection's table (default H100 SXM)")
    parser.add_argument(
        "--loader-clips-per-worker", type=float, default=None, help="measured by python -m grl.bench.realsize"
    )
    opts = parser.parse_args(argv)
    peaks = {label: tflops for _, label, tflops in DENSE_BF16_PEAKS}
    if opts.card not in peaks:
        parser.error(f"--card: unknown card {opts.card!r}; known: {', '.join(peaks)}")
    flops = count_flops()
    print(
        f"Counted (FlopCounterMode): {flops['step'] / 1e12:.2f} TFLOP per training step (batch {flops['batch']} x "
        f"T={flops['T']}, 256x128), {flops['clip'] / 1e9:.1f} GFLOP per test clip; {len(plan_profile('paper'))} "
        f"trainings; the GPU's rate assumed: {opts.card} bf16 peak {peaks[opts.card]:.0f} TFLOP/s x the share"
    )
    rows = [
        projected(flops, share, peaks[opts.card], gpus, opts.loader_clips_per_worker)
        for share in opts.share
        for gpus in opts.gpus
    ]
    table = pd.DataFrame(rows)
    shown = table.copy()
    for column in [c for c in shown.columns if c.endswith("test)")]:
        shown[column] = shown[column].map(human)
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


if __name__ == "__main__":
    main()
