"""The decoded-frame cache gives bit-identical clips, and a bad cache file is rebuilt, never trusted."""

import logging
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from grl.config import Config
from grl.data.datasets import Tracklet, VideoReIDDataset
from grl.data.frame_cache import frame_paths, load_or_build
from grl.data.loader import build_test_loader, build_train_loader


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """4 identities x 2 cameras of random-noise frames at 37x19 (the cache must resize like the decoder path)."""
    root = tmp_path_factory.mktemp("noisy")
    rng = np.random.default_rng(1)
    tracklets = []
    for pid in range(4):
        for cam in range(2):
            frames = []
            for f in range(int(rng.integers(3, 9))):
                path = root / f"p{pid}_c{cam}_f{f:02d}.png"
                Image.fromarray(rng.integers(0, 256, (37, 19, 3), dtype=np.uint8)).save(path)
                frames.append(str(path))
            tracklets.append(Tracklet(tuple(frames), pid=pid, camid=cam))
    return VideoReIDDataset("noisy", str(root), train=tracklets, query=tracklets[:2], gallery=tracklets)


def _config(**kw):
    return Config(height=16, width=8, seq_len=4, batch_size=4, **kw)


def _batches(loader, epoch=0):
    loader.batch_sampler.set_epoch(epoch)
    return [b[0].clone() for b in loader]


def test_cached_clips_are_bit_identical(noisy, tmp_path):
    cache = load_or_build(noisy, "v-test", 16, 8, path=tmp_path / "frames.npy")
    assert len(cache) == len(frame_paths(noisy)) and cache.array.shape[1:] == (3, 16, 8)
    config = _config()
    for epoch in (0, 1):  # training clips: random crops, flips and erasing drawn identically
        plain = _batches(build_train_loader(noisy, config, seed=5), epoch)  # no cache on the dataset: decoded
        cached = _batches(build_train_loader(noisy, config, seed=5, frames=cache), epoch)
        assert len(plain) == len(cached) > 0
        assert all(torch.equal(a, b) for a, b in zip(plain, cached))
    for sampling in ("rrs", "dense"):
        plain = [c for c, _ in build_test_loader(noisy.gallery, config, sampling=sampling)]
        cached = [c for c, _ in build_test_loader(noisy.gallery, config, sampling=sampling, frames=cache)]
        assert all(torch.equal(a, b) for a, b in zip(plain, cached))


def test_cache_is_reused_and_survives_pickling(noisy, tmp_path):
    file = tmp_path / "frames.npy"
    load_or_build(noisy, "v-test", 16, 8, path=file)
    stamp = file.stat().st_mtime_ns
    again = load_or_build(noisy, "v-test", 16, 8, path=file)
    assert file.stat().st_mtime_ns == stamp  # read back, not rebuilt
    copy = pickle.loads(pickle.dumps(again))  # what a DataLoader worker receives
    assert copy.file is not None and np.array_equal(np.asarray(copy.array), np.asarray(again.array))
    assert len(pickle.dumps(again)) < 10_000  # the file name travels, not the frames


def test_truncated_or_mismatched_cache_is_rebuilt_with_a_warning(noisy, tmp_path, caplog):
    file = tmp_path / "frames.npy"
    good = np.asarray(load_or_build(noisy, "v-test", 16, 8, path=file).array).copy()
    file.write_bytes(file.read_bytes()[:200])  # truncated
    with caplog.at_level(logging.WARNING, logger="grl.data.frame_cache"):
        rebuilt = load_or_build(noisy, "v-test", 16, 8, path=file)
    assert "frames.npy" in caplog.text and "rebuilding" in caplog.text
    assert np.array_equal(np.asarray(rebuilt.array), good)
    caplog.clear()
    fewer = VideoReIDDataset("noisy", noisy.root, train=noisy.train[:3], query=noisy.query[:1], gallery=noisy.train[:3])
    with caplog.at_level(logging.WARNING, logger="grl.data.frame_cache"):
        other = load_or_build(fewer, "v-test", 16, 8, path=file)  # another frame list: the index does not match
    assert "does not match" in caplog.text and len(other) == len(frame_paths(fewer))


def test_the_train_loader_reads_the_datasets_own_cache(noisy, tmp_path):
    import dataclasses

    cache = load_or_build(noisy, "v-test", 16, 8, path=tmp_path / "frames.npy")
    cached = dataclasses.replace(noisy, frame_cache=cache)
    loader = build_train_loader(cached, _config(), seed=5)
    assert loader.dataset.frames is cache  # what the trainer gets from load_config_dataset
    assert build_train_loader(noisy, _config(), seed=5).dataset.frames is None
