"""Clip datasets and the train / test DataLoaders.

Reproducibility: every random choice of a training item (its RRS frames and its
transform parameters) comes from a generator seeded by ``(seed, epoch, position in
the epoch, tracklet index)``. The batch sampler hands that key to the dataset, so
a seed gives the same batches whatever ``num_workers`` is, and a tracklet drawn
twice in an epoch (e.g. as its own partner) still gets two independent clips.

With common random numbers (``Config.crn``) the frames and the transform of a clip come from two
separate streams of that key, so arms of an ablation that draw different numbers of frames (T) still
augment every clip alike; the batches themselves depend on ``(seed, epoch)`` only.

Epochs: call ``loader.batch_sampler.set_epoch(epoch)`` before iterating each epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from grl.data.datasets import decode_frame  # raises CorruptFrameError naming the file
from grl.data.sampling import PairedBatchSampler, check_world_size, dense_chunks, rrs_indices, shard_pairs
from grl.data.transforms import ClipTransform, frames_to_tensor

MODES = ("train", "rrs", "dense")
# Stream ids appended to a clip's key under common random numbers (Config.crn).
FRAME_STREAM, AUGMENT_STREAM = 1, 2


class ClipDataset(Dataset):
    """Clips of tracklets. Item: ``(clip (T,3,H,W), pid, camid, tracklet_index)``.

    ``mode``: ``"train"`` (RRS, random frame per chunk), ``"rrs"`` (first frame per
    chunk) or ``"dense"`` (one item per consecutive ``seq_len`` chunk; ``len`` counts
    chunks and the item's ``tracklet_index`` says which tracklet it belongs to).
    A key is a dataset index or, from the train loader, ``(index, epoch, position)``.
    """

    def __init__(
        self,
        tracklets: Sequence,
        seq_len: int,
        transform: ClipTransform,
        mode: str = "rrs",
        seed: int = 0,
        chunks: str = "balanced",
        frames=None,
        crn: bool = False,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.tracklets = list(tracklets)
        self.seq_len, self.transform, self.mode, self.seed = int(seq_len), transform, mode, int(seed)
        self.chunks = chunks  # RRS chunk sizes (grl.data.sampling.rrs_indices)
        # Common random numbers: the frame draw and the augmentation come from two streams of their own, so two
        # runs that differ only in T (Table 4) still give every clip the same crop, flip and erasing.
        self.crn = bool(crn)
        # A grl.data.frame_cache.FrameCache of already resized frames at the transform's size, or None (decode).
        self.frames = frames
        self.epoch = 0
        # items: (tracklet index, frame indices or None for a fresh RRS draw)
        if mode == "dense":
            self.items = [
                (k, chunk) for k, t in enumerate(self.tracklets) for chunk in dense_chunks(len(t.frames), self.seq_len)
            ]
        elif mode == "rrs":
            self.items = [
                (k, rrs_indices(len(t.frames), self.seq_len, train=False, chunks=chunks))
                for k, t in enumerate(self.tracklets)
            ]
        else:
            self.items = [(k, None) for k in range(len(self.tracklets))]

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for plain integer keys in train mode (the train loader passes it in the key)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key):
        with _one_thread():
            return self._load(key)

    def _load(self, key):
        if isinstance(key, tuple):
            index, epoch, position = key
        else:
            index, epoch, position = key, self.epoch, key
        k, frame_ids = self.items[index]
        tracklet = self.tracklets[k]
        generator = None
        if self.mode == "train":
            key = [self.seed, int(epoch), int(position), int(index)]
            if self.crn:
                frame_rng = np.random.default_rng(key + [FRAME_STREAM])
                augment_seed = int(np.random.default_rng(key + [AUGMENT_STREAM]).integers(2**62))
                frame_ids = rrs_indices(
                    len(tracklet.frames), self.seq_len, train=True, rng=frame_rng, chunks=self.chunks
                )
            else:  # one stream for both (runs keyed before common random numbers existed)
                rng = np.random.default_rng(key)
                frame_ids = rrs_indices(len(tracklet.frames), self.seq_len, train=True, rng=rng, chunks=self.chunks)
                augment_seed = int(rng.integers(2**62))
            generator = torch.Generator().manual_seed(augment_seed)
        if self.frames is not None:
            resized = self.frames.clip([tracklet.frames[i] for i in frame_ids])  # (T, 3, H, W) uint8
        else:
            cache: dict[int, object] = {}  # short tracklets repeat frames: decode each once
            decoded = [
                cache[i] if i in cache else cache.setdefault(i, decode_frame(tracklet.frames[i])) for i in frame_ids
            ]
            resized = frames_to_tensor(decoded, self.transform.height, self.transform.width)
        clip = self.transform.transform_resized(resized, generator)
        return clip, int(tracklet.pid), int(tracklet.camid), k


@contextmanager
def _one_thread():
    """Run one item's small image ops on a single intra-op thread.

    Per-clip tensors are tiny: splitting them over threads costs more than it gains,
    and on a busy 2-core machine it was 16x slower (64x32 clips, ``num_workers=0``).
    DataLoader workers already run single-threaded; this covers the main process.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _KeyedBatchSampler:
    """Wraps a :class:`PairedBatchSampler`: yields ``(index, epoch, position)`` keys.

    With ``world_size`` > 1 it yields process ``rank``'s whole pairs of each global batch; positions
    are those in the global batch, so each clip gets the frames and augmentation it gets in a single
    process."""

    def __init__(self, sampler: PairedBatchSampler, rank: int = 0, world_size: int = 1):
        self.sampler = sampler
        self.rank, self.world_size = int(rank), int(world_size)
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def skip_next(self, batches: int) -> None:
        """The next pass leaves out its first ``batches`` batches (a run resumed in the middle of an epoch): their
        indices are still drawn, so the rest of the epoch is the same, but no frame of theirs is read."""
        self._skip = int(batches)

    @property
    def stats(self) -> dict:
        return self.sampler.stats

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        epoch, size = self.sampler.epoch, self.sampler.batch_size
        skip, self._skip = self._skip, 0
        for step, batch in enumerate(self.sampler):
            if step < skip:
                continue
            keys = [(index, epoch, step * size + slot) for slot, index in enumerate(batch)]
            yield keys if self.world_size == 1 else shard_pairs(keys, self.rank, self.world_size)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy / random from the worker's torch seed.

    Items do not use these global generators (their RNG comes from the key); this
    only keeps any stray library randomness reproducible.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _collate_train(items):
    clips, pids, camids, _ = zip(*items)
    return torch.stack(clips), torch.tensor(pids, dtype=torch.long), torch.tensor(camids, dtype=torch.long)


def _collate_test(items):
    clips, _, _, index = zip(*items)
    return torch.stack(clips), torch.tensor(index, dtype=torch.long)


def _loader_kwargs(config, seed: int) -> dict:
    workers = int(config.num_workers)
    if workers < 0:
        raise ValueError(f"config.num_workers must be >= 0, got {workers}")
    return dict(
        num_workers=workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(int(seed)),
        pin_memory=torch.cuda.is_available() and config.device != "cpu",
        persistent_workers=False,
    )


def build_train_loader(dataset, config, seed: int, frames=None, rank: int = 0, world_size: int = 1) -> DataLoader:
    """DataLoader over ``dataset.train``: ``(clips (B,T,3,H,W), pids (B,), camids (B,))``.

    Batches come from :class:`PairedBatchSampler` (``config.batch_size``;
    ``config.steps_per_epoch`` > 0 fixes the epoch length). Call
    ``loader.batch_sampler.set_epoch(epoch)`` before each epoch. ``frames``: a FrameCache
    (:func:`grl.data.frame_cache.load_or_build`) to read resized frames from instead of decoding;
    default: the dataset's ``frame_cache`` (None: decode). ``rank`` / ``world_size``: this process's
    whole pairs of each global batch of ``config.batch_size`` clips (DistributedDataParallel).
    """
    check_world_size(config.batch_size, world_size)
    transform = ClipTransform.for_config(config, train=True)
    if frames is None:  # the dataset's own cache (load_config_dataset sets it for the built-in sets)
        frames = getattr(dataset, "frame_cache", None)
    clips = ClipDataset(
        dataset.train,
        config.seq_len,
        transform,
        mode="train",
        seed=seed,
        chunks=config.rrs_chunks,
        frames=frames,
        crn=getattr(config, "crn", False),
    )
    sampler = PairedBatchSampler(dataset.train, config.batch_size, seed, steps=config.steps_per_epoch or None)
    return DataLoader(
        clips,
        batch_sampler=_KeyedBatchSampler(sampler, rank, world_size),
        collate_fn=_collate_train,
        **_loader_kwargs(config, seed),
    )


def build_test_loader(
    tracklets: Sequence, config, sampling: str = "rrs", batch_size: int | None = None, frames=None
) -> DataLoader:
    """Ordered DataLoader of ``(clips (B,T,3,H,W), index (B,))``; ``index`` = tracklet index.

    ``sampling="dense"`` yields one item per chunk, so a tracklet's features are the
    mean over the items sharing its index (grl.engine.features.extract_features averages them).
    """
    if sampling not in ("rrs", "dense"):
        raise ValueError(f"sampling must be 'rrs' or 'dense', got {sampling!r}")
    transform = ClipTransform.for_config(config, train=False)
    clips = ClipDataset(
        tracklets, config.seq_len, transform, mode=sampling, seed=config.seed, chunks=config.rrs_chunks, frames=frames
    )
    return DataLoader(
        clips,
        batch_size=batch_size or config.batch_size,
        shuffle=False,
        collate_fn=_collate_test,
        **_loader_kwargs(config, config.seed),
    )
