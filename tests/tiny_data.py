"""A tiny video Re-ID set on disk for the engine tests: one noisy colour per identity, PNG frames.

Train: ``train_ids`` identities on 2 cameras, 6-8 frames per tracklet; query (camera 0, 7 frames) and
gallery (camera 1, 9 frames): ``test_ids`` more identities. Same seed, same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from grl.data.datasets import Tracklet, VideoReIDDataset


def write_tracklet(folder: Path, pid: int, cam: int, num_frames: int, rng, colour, size=(32, 16)) -> Tracklet:
    folder.mkdir(parents=True)
    paths = []
    for f in range(num_frames):
        path = folder / f"{f:04d}.png"
        Image.fromarray(np.clip(colour + rng.normal(0, 25, (*size, 3)), 0, 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return Tracklet(tuple(paths), pid, cam)


def colour_dataset(root: Path, train_ids: int, test_ids: int, protocol: dict | None = None) -> VideoReIDDataset:
    rng = np.random.default_rng(0)
    colours = rng.uniform(30, 225, (train_ids + test_ids, 3))
    test = range(train_ids, train_ids + test_ids)
    train = [
        write_tracklet(root / f"tr{p}c{c}", p, c, 6 + p % 3, rng, colours[p])
        for p in range(train_ids)
        for c in range(2)
    ]
    query = [write_tracklet(root / f"q{p}", p, 0, 7, rng, colours[p]) for p in test]
    gallery = [write_tracklet(root / f"g{p}", p, 1, 9, rng, colours[p]) for p in test]
    return VideoReIDDataset("mars", str(root), train, query, gallery, **({"protocol": protocol} if protocol else {}))
