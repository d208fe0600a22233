"""Which frames make a clip, and which tracklets make a batch.

- :func:`rrs_indices`: restricted random sampling (RRS) — the tracklet is cut into
  ``seq_len`` equal chunks (sizes differ by at most one, longer chunks first, as
  ``numpy.array_split``); training takes one random frame per chunk, testing the
  first frame of each chunk. A tracklet shorter than ``seq_len`` repeats its last frame.
  ``chunks="ceil"`` is the authors' release: chunks of ``ceil(n / seq_len)`` frames, the
  index list padded with the last frame (n = 10, T = 8 tests frames 0,2,4,6,8,9,9,9).
- :func:`dense_chunks`: every frame, in consecutive ``seq_len``-frame chunks (dense test).
- :class:`PairedBatchSampler`: half a batch of random tracklets, each followed (at
  ``i + B/2``) by a partner of the same identity seen by a *different* camera.
- :func:`shard_pairs`: one process's share of a paired batch (DistributedDataParallel).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np

from grl.config import ConfigError


def _check_sizes(num_frames: int, seq_len: int) -> None:
    if int(num_frames) < 1:
        raise ValueError(f"num_frames must be >= 1 (a tracklet has at least one frame), got {num_frames}")
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")


def rrs_indices(
    num_frames: int, seq_len: int, train: bool, rng: np.random.Generator | int | None = None, chunks: str = "balanced"
) -> list[int]:
    """Frame indices of one RRS clip (length ``seq_len``, non-decreasing).

    ``rng`` (a ``numpy.random.Generator`` or an int seed) drives the training draw; it
    is ignored in test mode. ``None`` in training means a fresh, unseeded generator.
    ``chunks``: "balanced" (sizes differ by at most one) or "ceil" (the release's, see above).
    """
    _check_sizes(num_frames, seq_len)
    if chunks not in ("balanced", "ceil"):
        raise ValueError(f"chunks must be 'balanced' or 'ceil', got {chunks!r}")
    if chunks == "ceil":
        size = -(-num_frames // seq_len)
        table = np.minimum(np.arange(size * seq_len), num_frames - 1).reshape(seq_len, size)  # (T, size)
        if not train:
            return table[:, 0].tolist()
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return table[np.arange(seq_len), rng.integers(0, size, seq_len)].tolist()
    if num_frames < seq_len:
        return list(range(num_frames)) + [num_frames - 1] * (seq_len - num_frames)
    sizes = np.full(seq_len, num_frames // seq_len)
    sizes[: num_frames % seq_len] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if not train:
        return starts.tolist()
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return (starts + rng.integers(0, sizes)).tolist()


def dense_chunks(num_frames: int, seq_len: int) -> list[list[int]]:
    """All frames in consecutive ``seq_len`` chunks; the last chunk repeats the last frame."""
    _check_sizes(num_frames, seq_len)
    chunks = []
    for start in range(0, num_frames, seq_len):
        chunk = list(range(start, min(start + seq_len, num_frames)))
        chunks.append(chunk + [num_frames - 1] * (seq_len - len(chunk)))
    return chunks


class PairedBatchSampler:
    """Batches of ``batch_size`` dataset indices in probe/partner halves.

    ``batch[:B/2]`` are random tracklets with distinct identities (repeats only when
    the data has fewer than B/2 identities). Probes are drawn from a shuffled pass over
    all tracklets; a probe whose identity is already in the batch waits for the next
    batch, so each tracklet is a probe about once per epoch (the last batches may draw
    ahead from the next shuffled pass to keep identities distinct).
    ``batch[i + B/2]`` is a partner of ``batch[i]``'s identity from another camera.

    Fallback when the identity was seen by one camera only: a *different* tracklet of
    the same camera; when the identity has a single tracklet, the probe itself. Both
    are counted in :attr:`stats` (per epoch iterated) and, as properties of the data,
    in :attr:`num_without_cross_camera` / :attr:`num_without_partner`.

    An epoch has ``len(tracklets) // (B/2)`` batches unless ``steps`` is given (the
    probe pool is then reshuffled as often as needed). The batches depend only on
    ``(seed, epoch)``; call :meth:`set_epoch` before iterating each epoch.
    """

    def __init__(self, tracklets: Sequence, batch_size: int, seed: int, steps: int | None = None):
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size must be even and >= 2 (half probes, half partners), got {batch_size}")
        if steps is not None and steps < 1:
            raise ValueError(f"steps must be None (one pass over the tracklets) or >= 1, got {steps}")
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.half = batch_size // 2
        if len(tracklets) < self.half and steps is None:
            raise ValueError(
                f"need at least batch_size/2 = {self.half} tracklets for one batch per epoch, got {len(tracklets)}; "
                "lower batch_size or give steps"
            )
        if len(tracklets) == 0:
            raise ValueError("tracklets is empty: nothing to sample batches from")
        self.batch_size = batch_size
        self.seed = int(seed)
        self.steps = steps
        self.epoch = 0
        self.pids = [int(t.pid) for t in tracklets]
        cams = [int(t.camid) for t in tracklets]
        by_id: dict[int, list[int]] = {}
        for i, pid in enumerate(self.pids):
            by_id.setdefault(pid, []).append(i)
        # Partner candidates per tracklet, resolved once: (kind, candidates).
        self._partners: list[tuple[str, np.ndarray]] = []
        for i, pid in enumerate(self.pids):
            same_id = by_id[pid]
            other_cam = [j for j in same_id if cams[j] != cams[i]]
            same_cam = [j for j in same_id if j != i and cams[j] == cams[i]]
            if other_cam:
                self._partners.append(("cross_camera", np.asarray(other_cam)))
            elif same_cam:
                self._partners.append(("same_camera", np.asarray(same_cam)))
            else:
                self._partners.append(("self", np.asarray([i])))
        self.num_without_cross_camera = sum(kind != "cross_camera" for kind, _ in self._partners)
        self.num_without_partner = sum(kind == "self" for kind, _ in self._partners)
        self.stats = {"cross_camera": 0, "same_camera": 0, "self": 0}

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.steps if self.steps is not None else len(self.pids) // self.half

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.stats = {"cross_camera": 0, "same_camera": 0, "self": 0}
        for probes in self._probe_batches(rng, len(self)):
            partners = []
            for i in probes:
                kind, candidates = self._partners[i]
                self.stats[kind] += 1
                partners.append(int(candidates[rng.integers(len(candidates))]))
            yield probes + partners

    def _probe_batches(self, rng: np.random.Generator, num_batches: int) -> Iterator[list[int]]:
        n, num_ids = len(self.pids), len(set(self.pids))
        pool: deque[int] = deque()

        def draw() -> int:
            if not pool:  # a new shuffled pass (steps > one pass, or drawing ahead for distinct ids)
                pool.extend(rng.permutation(n).tolist())
            return pool.popleft()

        for _ in range(num_batches):
            probes: list[int] = []
            seen: set[int] = set()
            deferred: list[int] = []  # identity already in this batch: first in line for the next one
            while len(probes) < self.half:
                if len(seen) == num_ids:  # fewer identities than B/2: repeats are unavoidable
                    probes.append(deferred.pop(0) if deferred else draw())
                    continue
                i = draw()
                if self.pids[i] in seen:
                    deferred.append(i)
                    continue
                probes.append(i)
                seen.add(self.pids[i])
            pool.extendleft(reversed(deferred))
            yield probes


def shard_pairs(batch: Sequence, rank: int, world_size: int) -> list:
    """Process ``rank``'s whole pairs of a paired batch: probes ``[r·h, (r+1)·h)`` then their partners.

    ``h = B / (2·world_size)``. The local batch keeps the paired layout (partner of local ``i`` at
    ``i + h``), and the ranks' shares together are the batch. ``B`` must be a multiple of ``2·world_size``
    (:func:`check_world_size` says so by name)."""
    half, per = len(batch) // 2, len(batch) // (2 * world_size)
    if world_size < 1 or not 0 <= rank < world_size or len(batch) % (2 * world_size):
        raise ValueError(
            f"cannot shard a paired batch of {len(batch)} into {world_size} shares of whole pairs (rank {rank})"
        )
    start = rank * per
    return list(batch[start : start + per]) + list(batch[half + start : half + start + per])


def check_world_size(batch_size: int, world: int) -> None:
    """Refuse a world size that cannot give every rank whole probe/partner pairs of the global batch."""
    if world > 1 and batch_size % (2 * world):
        raise ConfigError(
            f"batch_size={batch_size} cannot be shared by world size {world}: every process needs "
            f"batch_size / {world} clips made of whole probe/partner pairs, i.e. batch_size must be a multiple of "
            f"2 x {world} = {2 * world}; run a number of processes (torchrun --nproc_per_node) that divides "
            f"batch_size / 2 = {batch_size // 2}, or set the Config's (the profile's) batch_size to e.g. "
            f"{2 * world * max(1, round(batch_size / (2 * world)))}"
        )
