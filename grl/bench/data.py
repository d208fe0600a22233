"""Benchmark the training data loader: ``python -m grl.bench.data``.

Writes a small set of fake tracklets (JPEG frames drawn with PIL, at the size the
loader will produce, in a temporary folder) and measures clips per second of
:func:`grl.data.loader.build_train_loader` (T=8, batch 16: RRS, frame decoding,
clip transforms, collation) at 256x128 and 64x32, with 0 and 2 workers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from grl.config import Config
from grl.data.datasets import Tracklet, VideoReIDDataset
from grl.data.loader import build_train_loader


def write_fake_tracklets(
    root: str, height: int, width: int, num_ids: int = 8, cams: int = 2, frames: int = 24, seed: int = 0
) -> VideoReIDDataset:
    """One tracklet per (identity, camera): a coloured "person" box on a noisy background."""
    rng = np.random.default_rng(seed)
    tracklets = []
    for pid in range(num_ids):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        for cam in range(cams):
            paths = []
            for f in range(frames):
                background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) // 4 + 60 * cam
                image = Image.fromarray(background)
                dx = int(rng.integers(-width // 8, width // 8 + 1))
                ImageDraw.Draw(image).rectangle(
                    [width // 4 + dx, height // 8, 3 * width // 4 + dx, 7 * height // 8], fill=colour
                )
                path = os.path.join(root, f"{pid:04d}C{cam + 1}F{f:04d}.jpg")
                image.save(path, quality=90)
                paths.append(path)
            tracklets.append(Tracklet(tuple(paths), pid=pid, camid=cam))
    return VideoReIDDataset("fake", root, train=tracklets, query=[], gallery=[])


def measure(
    dataset: VideoReIDDataset,
    height: int,
    width: int,
    workers: int,
    batches: int,
    seq_len: int = 8,
    batch_size: int = 16,
) -> dict:
    config = Config(
        height=height,
        width=width,
        seq_len=seq_len,
        batch_size=batch_size,
        num_workers=workers,
        steps_per_epoch=batches + 1,
    )
    loader = build_train_loader(dataset, config, seed=0)
    it = iter(loader)
    next(it)  # warm-up: worker start-up and first decode are not throughput
    start = time.perf_counter()
    clips = sum(batch[0].shape[0] for batch in it)
    wall = time.perf_counter() - start
    return {
        "size": f"{height}x{width}",
        "T": seq_len,
        "batch": batch_size,
        "workers": workers,
        "clips": clips,
        "wall_s": round(wall, 2),
        "clips_per_s": round(clips / wall, 1),
        "frames_per_s": round(clips * seq_len / wall, 1),
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="timed batches per row (after one warm-up batch)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    opts = parser.parse_args(argv)
    rows = []
    for height, width in ((256, 128), (64, 32)):
        with tempfile.TemporaryDirectory() as root:
            dataset = write_fake_tracklets(root, height, width)
            for workers in opts.workers:
                rows.append(measure(dataset, height, width, workers, opts.batches))
    table = pd.DataFrame(rows)
    print("Training loader throughput (fake JPEG tracklets stored at the output size)")
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
