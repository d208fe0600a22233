"""Decoded-frame cache: every frame of a small dataset, resized once, in one memory-mapped file.

Decoding a PNG/JPEG and resizing it costs more than the tiny CPU network's step on it, and a
study decodes the same frames in every run. The built-in synthetic sets are small (the MARS-like
set is ~19k frames, ~120 MB as uint8 at 64x32), so each is decoded once per input size into
``data/cache/frames/<dataset>-<data_version>-<H>x<W>.npy`` and read back through ``np.load(...,
mmap_mode="r")`` by every run and every process (the OS shares the pages).

Frames are resized exactly as :func:`grl.data.transforms.frames_to_tensor` resizes a clip (each
frame on its own, antialiased), so a run reads bit-identical clips with or without the cache
(``tests/test_loader.py`` checks it). A cache file whose index does not match the dataset's frame
list, or that cannot be read, is rebuilt with a warning naming it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from grl.utils import torch_threads

log = logging.getLogger(__name__)


class FrameCache:
    """``cache.clip(paths) -> (T, 3, H, W)`` uint8 tensor of resized frames, looked up by path."""

    def __init__(self, array: np.ndarray, paths: Sequence[str], file: str | os.PathLike | None = None):
        if len(array) != len(paths):
            raise ValueError(f"frame cache: {len(array)} frames for {len(paths)} paths")
        self.array = array  # (N, 3, H, W) uint8, usually a read-only memory map of ``file``
        self.paths, self.file = list(paths), file
        self.row = {p: i for i, p in enumerate(self.paths)}

    def __reduce__(self):
        # DataLoader workers get the file name and map it themselves, not a pickled copy of every frame.
        if self.file is None:
            return FrameCache, (np.asarray(self.array), self.paths)
        return _reopen, (os.fspath(self.file), self.paths)

    def __len__(self) -> int:
        return len(self.row)

    def __contains__(self, path) -> bool:
        return os.fspath(path) in self.row

    def clip(self, paths: Sequence) -> torch.Tensor:
        rows = [self.row[os.fspath(p)] for p in paths]
        return torch.from_numpy(np.ascontiguousarray(self.array[rows]))


def frame_paths(dataset) -> list[str]:
    """Every frame path of a :class:`~grl.data.datasets.VideoReIDDataset` (train, query, gallery), once, sorted."""
    tracklets = [*dataset.train, *dataset.query, *dataset.gallery]
    return sorted({os.fspath(f) for t in tracklets for f in t.frames})


def cache_path(dataset_name: str, data_version: str, height: int, width: int) -> Path:
    from grl.paths import data_dir

    return data_dir() / "cache" / "frames" / f"{dataset_name}-{data_version}-{height}x{width}.npy"


def _digest(paths: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(paths).encode()).hexdigest()


def load_or_build(
    dataset, data_version: str, height: int, width: int, path: str | os.PathLike | None = None, progress: bool = False
) -> FrameCache:
    """The frame cache of ``dataset`` at ``height`` x ``width``, built (under a file lock) when missing or stale."""
    from filelock import FileLock

    path = Path(path) if path else cache_path(dataset.name, data_version, height, width)
    paths = frame_paths(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # two jobs of one study build it once
        cached = _read(path, paths, height, width)
        if cached is None:
            _build(path, paths, height, width, progress)
            cached = _read(path, paths, height, width)
            if cached is None:
                raise RuntimeError(f"frame cache {path} could not be read back right after it was written")
    return cached


def _index_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _read(path: Path, paths: list[str], height: int, width: int) -> FrameCache | None:
    index_file = _index_path(path)
    if not path.exists() and not index_file.exists():
        return None
    try:
        index = json.loads(index_file.read_text())
        array = np.load(path, mmap_mode="r")
        ok = (
            index.get("digest") == _digest(paths)
            and array.dtype == np.uint8
            and array.shape == (len(paths), 3, height, width)
        )
    except (OSError, ValueError) as exc:
        log.warning("frame cache %s is unreadable (%s: %s); rebuilding it", path, type(exc).__name__, exc)
        return None
    if not ok:
        log.warning("frame cache %s does not match this dataset's frames or size; rebuilding it", path)
        return None
    return FrameCache(array, paths, path)


def _reopen(file: str, paths: list[str]) -> FrameCache:
    return FrameCache(np.load(file, mmap_mode="r"), paths, file)


def _build(path: Path, paths: list[str], height: int, width: int, progress: bool) -> None:
    from tqdm import tqdm

    from grl.data.datasets import decode_frame
    from grl.data.transforms import frames_to_tensor

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npy")
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), 3, height, width))
        with torch_threads(1):
            for i, p in enumerate(tqdm(paths, desc=f"caching frames {path.name}", disable=not progress, mininterval=2)):
                out[i] = frames_to_tensor([decode_frame(p)], height, width)[0].numpy()
        out.flush()
        del out
        index_tmp = _index_path(Path(tmp))
        index_tmp.write_text(json.dumps({"digest": _digest(paths), "count": len(paths), "size": [height, width]}))
        os.replace(tmp, path)  # the array first: a stale index never vouches for a new array (digest differs)
        os.replace(index_tmp, _index_path(path))
    except BaseException:
        for leftover in (tmp, _index_path(Path(tmp))):
            Path(leftover).unlink(missing_ok=True)
        raise
