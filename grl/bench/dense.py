"""The dense test at real size, on this CPU: ``python -m grl.bench.dense [--lengths 300 1000 3000]``.

1. **Bounded memory.** One tracklet of 300, 1,000 and 3,000 frames (the tiny backbone) (256x128 JPEGs) goes through
   ``grl.engine.features.extract_features(sampling="dense")``: every frame, in T-frame chunks, batched as the test
   loader batches them (``batch_size`` chunks at a time), the chunk features summed per tracklet. Each length runs
   in a fresh process; ``peak_mib`` is its peak resident memory above what the process held before the call
   (Linux's peak-RSS mark, reset just before), so it shows whether memory grows with the tracklet.
2. **Throughput and the projected MARS test.** Frames per second of that extraction with the tiny backbone and
   with ResNet-50 (the paper's, without its ImageNet weights: the same arithmetic) on this CPU, and the projected
   time of MARS's dense test (681,089 frames: 1,980 queries and 11,310 gallery tracklets, each frame once) at the
   measured rate and at given per-frame GPU costs. ResNet-50 runs one 300-frame tracklet (minutes on one core). Ranking 1,980 x 11,310 is ``python -m grl.bench.evaluation``.

Not a test: the numbers depend on this machine. docs/benchmarks.md has them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

MARS_TEST_FRAMES = 681_089  # bbox_test: the query and gallery tracklets' frames, each encoded once


def write_long_tracklet(folder: str | Path, frames: int, height: int = 256, width: int = 128, seed: int = 0):
    """One tracklet of ``frames`` JPEG frames (a person-sized box drifting over a noisy background)."""
    from PIL import Image, ImageDraw

    from grl.data.datasets import Tracklet

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(frames):
        image = Image.fromarray(rng.integers(40, 200, (height, width, 3), dtype=np.uint8))
        dx = int(8 * np.sin(f / 15))
        ImageDraw.Draw(image).rectangle(
            [width // 4 + dx, height // 8, 3 * width // 4 + dx, 7 * height // 8], fill=(90, 30, 160)
        )
        path = folder / f"0001C1T0001F{f + 1:04d}.jpg"
        image.save(path, quality=90)
        paths.append(str(path))
    return Tracklet(tuple(paths), pid=1, camid=0)


def _measure(folder: str, frames: int, backbone: str, batch_size: int, seq_len: int) -> dict:
    """In a fresh process: peak memory above the start and the wall time of one dense extraction."""
    import torch

    from grl.config import Config
    from grl.data.datasets import Tracklet
    from grl.engine.features import extract_features
    from grl.models.grl import build_model

    torch.set_num_threads(1)
    paths = sorted(str(p) for p in Path(folder).glob("*.jpg"))[:frames]
    tracklet = Tracklet(tuple(paths), pid=1, camid=0)
    config = Config(
        backbone=backbone, pretrained=False, height=256, width=128, seq_len=seq_len, batch_size=batch_size,
        num_workers=0, threads=1, test_sampling="dense",
    )  # fmt: skip
    model = build_model(config).eval()
    extract_features(model, [Tracklet(tuple(paths[:seq_len]), pid=1, camid=0)], config, sampling="dense")  # warm-up
    _reset_peak()
    before = _rss_mib()
    start = time.perf_counter()
    features = extract_features(model, [tracklet], config, sampling="dense")
    wall = time.perf_counter() - start
    return {
        "backbone": backbone,
        "frames": frames,
        "chunks": -(-frames // seq_len),
        "batch (chunks)": batch_size,
        "peak_mib": _peak_mib() - before,
        "wall_s": wall,
        "frames_per_s": frames / wall,
        "finite": bool(all(torch.isfinite(v).all() for v in features.values())),
    }


def _reset_peak() -> None:
    try:  # Linux: writing 5 resets the peak-RSS mark (VmHWM) of this process
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mib() -> float:
    return _status_mib("VmRSS:")


def _peak_mib() -> float:
    return _status_mib("VmHWM:")


def measure(plan, batch_size: int = 16, seq_len: int = 8) -> pd.DataFrame:
    """One row per (backbone, frames) of ``plan``, each measured in a fresh process (spawned, one thread)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="grl-dense-") as folder:
        write_long_tracklet(folder, max(frames for _, frames in plan))
        for backbone, frames in plan:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                rows.append(pool.submit(_measure, folder, frames, backbone, batch_size, seq_len).result())
    return pd.DataFrame(rows)


def projection(table: pd.DataFrame, gpu_ms_per_frame=(0.25, 0.5, 1.0)) -> pd.DataFrame:
    """Projected time of MARS's dense test: at each backbone's measured rate on this CPU (its longest tracklet's
    row), and at the given per-frame GPU costs (assumptions, not measurements: no GPU here)."""
    rows = []
    for backbone, part in table.groupby("backbone", sort=False):
        rate = float(part.sort_values("frames").frames_per_s.iloc[-1])
        rows.append({"where": f"this CPU, one thread, {backbone} (measured)", "ms per frame": 1000 / rate})
    rows += [{"where": "a GPU at this per-frame cost (assumed)", "ms per frame": ms} for ms in gpu_ms_per_frame]
    out = pd.DataFrame(rows)
    out["MARS dense test (h)"] = out["ms per frame"] * MARS_TEST_FRAMES / 1000 / 3600
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[300, 1000, 3000], help="tracklet lengths (tiny)")
    parser.add_argument(
        "--resnet-frames", type=int, default=300, help="the ResNet-50 row's tracklet (default 300; 0: no row)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="chunks per batch (default 16, the paper's)")
    opts = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    plan = [("tiny", n) for n in opts.lengths] + ([("resnet50", opts.resnet_frames)] if opts.resnet_frames else [])
    table = measure(plan, opts.batch_size)
    print("Dense test of one tracklet, 256x128, T=8, one thread (fresh process per row)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    projected = projection(table)
    print(f"\nMARS's dense test ({MARS_TEST_FRAMES:,} frames, each once)")
    print(projected.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return {"dense": table, "projection": projected}


if __name__ == "__main__":
    main()
