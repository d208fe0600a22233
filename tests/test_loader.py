"""ClipDataset and the train / test DataLoaders on a tiny on-disk fixture."""

import numpy as np
import pytest
import torch
from PIL import Image

from grl.config import Config
from grl.data.datasets import CorruptFrameError, Tracklet, VideoReIDDataset
from grl.data.loader import ClipDataset, build_test_loader, build_train_loader
from grl.data.sampling import dense_chunks, rrs_indices
from grl.data.transforms import ClipTransform


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """5 identities x 2 cameras, tracklets of 2..9 frames; each frame's colour encodes (tracklet, frame)."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    tracklets = []
    for pid in range(5):
        for cam in range(2):
            k = len(tracklets)
            frames = []
            for f in range(int(rng.integers(2, 10))):
                path = root / f"t{k:02d}_f{f:02d}.png"
                Image.fromarray(np.full((16, 8, 3), (k * 10, f * 20, 100), np.uint8)).save(path)
                frames.append(str(path))
            tracklets.append(Tracklet(tuple(frames), pid=pid, camid=cam))
    return VideoReIDDataset("tiny", str(root), train=tracklets, query=tracklets[:4], gallery=tracklets)


def _config(**kw):
    return Config(height=16, width=8, seq_len=4, batch_size=4, **kw)


def _epoch(loader, epoch):
    loader.batch_sampler.set_epoch(epoch)
    return [tuple(t.clone() for t in batch) for batch in loader]


def test_train_batches_have_contract_shapes_and_pairs(tiny):
    loader = build_train_loader(tiny, _config(), seed=0)
    batches = _epoch(loader, 0)
    assert len(batches) == len(loader) == len(tiny.train) // 2
    for clips, pids, camids in batches:
        assert clips.shape == (4, 4, 3, 16, 8) and clips.dtype == torch.float32
        assert pids.dtype == camids.dtype == torch.long
        assert torch.equal(pids[:2], pids[2:]) and torch.all(camids[:2] != camids[2:])


def test_steps_per_epoch_sets_loader_length(tiny):
    assert len(build_train_loader(tiny, _config(steps_per_epoch=7), seed=0)) == 7


def test_same_seed_same_batches_with_0_and_2_workers(tiny):
    ref = build_train_loader(tiny, _config(num_workers=0), seed=3)
    par = build_train_loader(tiny, _config(num_workers=2), seed=3)
    for epoch in (0, 1):
        a, b = _epoch(ref, epoch), _epoch(par, epoch)
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert all(torch.equal(u, v) for u, v in zip(x, y))
    assert not torch.equal(_epoch(ref, 0)[0][0], _epoch(ref, 1)[0][0])  # epochs differ
    other = build_train_loader(tiny, _config(), seed=4)
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(_epoch(ref, 0), _epoch(other, 0)))


def test_train_items_depend_only_on_their_key(tiny):
    ds = ClipDataset(tiny.train, 4, ClipTransform(16, 8, train=True), mode="train", seed=0)
    a, b = ds[(3, 0, 5)], ds[(3, 0, 5)]
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:] == (tiny.train[3].pid, tiny.train[3].camid, 3)
    # another position (the same tracklet drawn twice in an epoch) gets a fresh draw
    assert not torch.equal(a[0], ds[(3, 0, 6)][0])


def _frame_codes(clip):
    """Recover (tracklet, frame) from the fixture's colour code of each frame of a test clip."""
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    rgb = ((clip * std + mean) * 255).round()[:, :, 0, 0]
    return [(int(r) // 10, int(g) // 20) for r, g, _ in rgb]


def test_test_loader_rrs_is_ordered_first_frame_per_chunk(tiny):
    loader = build_test_loader(tiny.gallery, _config(), sampling="rrs")
    seen = []
    for clips, index in loader:
        assert clips.shape[1:] == (4, 3, 16, 8) and index.dtype == torch.long
        for clip, k in zip(clips, index.tolist()):
            assert _frame_codes(clip) == [(k, f) for f in rrs_indices(len(tiny.gallery[k].frames), 4, train=False)]
            seen.append(k)
    assert seen == list(range(len(tiny.gallery)))


def test_test_loader_dense_yields_every_frame_by_chunk(tiny):
    loader = build_test_loader(tiny.gallery, _config(), sampling="dense")
    frames_by_tracklet: dict[int, list[int]] = {}
    for clips, index in loader:
        for clip, k in zip(clips, index.tolist()):
            codes = _frame_codes(clip)
            assert all(t == k for t, _ in codes)
            frames_by_tracklet.setdefault(k, []).extend(f for _, f in codes)
    for k, t in enumerate(tiny.gallery):
        assert frames_by_tracklet[k] == [i for chunk in dense_chunks(len(t.frames), 4) for i in chunk]


def test_corrupt_frame_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    ds = ClipDataset([Tracklet((str(bad),), 0, 0)], 2, ClipTransform(16, 8, train=False), mode="rrs")
    with pytest.raises(CorruptFrameError, match="broken.jpg"):
        ds[0]


def test_bad_arguments_are_named(tiny):
    with pytest.raises(ValueError, match="mode"):
        ClipDataset(tiny.train, 4, ClipTransform(16, 8, train=False), mode="random")
    with pytest.raises(ValueError, match="sampling"):
        build_test_loader(tiny.gallery, _config(), sampling="all")


def test_items_load_single_threaded_and_restore_the_thread_count(tiny, monkeypatch):
    seen = []
    transform = ClipTransform(16, 8, train=False)
    monkeypatch.setattr(
        transform, "apply", lambda clip, params: (seen.append(torch.get_num_threads()), clip.float())[1]
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ClipDataset(tiny.gallery, 4, transform, mode="rrs")[0]
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_pinned_memory_on_cuda_only(monkeypatch):
    """The GPU path pins batches (fast, asynchronous host-to-device copies); CPU runs never do."""
    from grl.data import loader

    assert loader._loader_kwargs(_config(device="cpu", num_workers=2), 0)["pin_memory"] is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for device in ("cuda", "auto"):
        kwargs = loader._loader_kwargs(_config(device=device, num_workers=4), 0)
        assert kwargs["pin_memory"] is True and kwargs["num_workers"] == 4
    assert loader._loader_kwargs(_config(device="cpu", num_workers=2), 0)["pin_memory"] is False
