"""RRS, dense chunks and the paired batch sampler."""

from collections import Counter

import numpy as np
import pytest

from grl.data.datasets import Tracklet
from grl.data.sampling import PairedBatchSampler, dense_chunks, rrs_indices


# ---- rrs_indices ------------------------------------------------------------------
def test_rrs_test_mode_takes_first_frame_of_each_equal_chunk():
    assert rrs_indices(16, 8, train=False) == [0, 2, 4, 6, 8, 10, 12, 14]
    # 10 frames in 4 chunks: sizes 3,3,2,2 -> starts 0,3,6,8
    assert rrs_indices(10, 4, train=False) == [0, 3, 6, 8]
    assert rrs_indices(8, 8, train=False) == list(range(8))


def test_rrs_train_draws_one_frame_inside_each_chunk():
    rng = np.random.default_rng(0)
    seen = [set() for _ in range(4)]
    for _ in range(300):
        idx = rrs_indices(10, 4, train=True, rng=rng)
        for chunk, (i, lo, hi) in enumerate(zip(idx, [0, 3, 6, 8], [3, 6, 8, 10])):
            assert lo <= i < hi
            seen[chunk].add(i)
    # every frame of every chunk is reachable: the draw is random, not a fixed offset
    assert seen == [{0, 1, 2}, {3, 4, 5}, {6, 7}, {8, 9}]


def test_rrs_train_is_reproducible_from_the_rng():
    a = rrs_indices(100, 8, train=True, rng=np.random.default_rng(5))
    b = rrs_indices(100, 8, train=True, rng=np.random.default_rng(5))
    c = rrs_indices(100, 8, train=True, rng=np.random.default_rng(6))
    assert a == b and a != c


@pytest.mark.parametrize("train", [True, False])
def test_rrs_short_tracklet_repeats_its_last_frame(train):
    assert rrs_indices(3, 8, train=train, rng=0) == [0, 1, 2, 2, 2, 2, 2, 2]
    assert rrs_indices(1, 4, train=train, rng=0) == [0, 0, 0, 0]


@pytest.mark.parametrize("args, name", [((0, 8), "num_frames"), ((5, 0), "seq_len")])
def test_rrs_and_dense_reject_bad_sizes(args, name):
    with pytest.raises(ValueError, match=name):
        rrs_indices(*args, train=False)
    with pytest.raises(ValueError, match=name):
        dense_chunks(*args)


# ---- dense_chunks -----------------------------------------------------------------
def test_dense_chunks_cover_every_frame_and_pad_the_last_chunk():
    assert dense_chunks(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]]
    assert dense_chunks(8, 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert dense_chunks(2, 4) == [[0, 1, 1, 1]]


# ---- PairedBatchSampler -----------------------------------------------------------
def _tracklets(num_ids=12, cams=(0, 1, 2), per_cam=2):
    return [Tracklet(frames=("f",), pid=p, camid=c) for p in range(num_ids) for c in cams for _ in range(per_cam)]


def test_pairs_share_identity_from_another_camera_and_probes_are_distinct_ids():
    tracklets = _tracklets()
    sampler = PairedBatchSampler(tracklets, batch_size=8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(tracklets) // 4
    probes = []
    for batch in batches:
        assert len(batch) == 8
        for i in range(4):
            p, q = tracklets[batch[i]], tracklets[batch[i + 4]]
            assert p.pid == q.pid and p.camid != q.camid
        assert len({tracklets[i].pid for i in batch[:4]}) == 4
        probes += batch[:4]
    # one shuffled pass: nearly every tracklet is a probe once (the end may draw ahead)
    assert len(set(probes)) >= 0.9 * len(tracklets)
    assert sampler.stats == {"cross_camera": len(probes), "same_camera": 0, "self": 0}


def test_single_camera_fallback_is_documented_and_counted():
    tracklets = [
        Tracklet(("f",), pid=0, camid=0),
        Tracklet(("f",), pid=0, camid=0),  # one camera, two tracklets
        Tracklet(("f",), pid=1, camid=1),  # a single tracklet
        Tracklet(("f",), pid=2, camid=0),
        Tracklet(("f",), pid=2, camid=1),
    ]
    sampler = PairedBatchSampler(tracklets, batch_size=2, seed=3)
    assert sampler.num_without_cross_camera == 3 and sampler.num_without_partner == 1
    for probe, partner in sampler:
        if probe in (0, 1):
            assert partner == 1 - probe  # another tracklet of the same camera
        elif probe == 2:
            assert partner == 2  # only itself
        else:
            assert tracklets[partner].camid != tracklets[probe].camid
    assert sampler.stats == {"cross_camera": 2, "same_camera": 2, "self": 1}


def test_deterministic_per_seed_and_epoch():
    tracklets = _tracklets()
    a, b = PairedBatchSampler(tracklets, 8, seed=1), PairedBatchSampler(tracklets, 8, seed=1)
    assert list(a) == list(b) and list(a) == list(a)  # iterating again repeats the epoch
    epoch0 = list(a)
    a.set_epoch(1)
    assert list(a) != epoch0
    assert list(PairedBatchSampler(tracklets, 8, seed=2)) != epoch0
    b.set_epoch(1)
    assert list(a) == list(b)


def test_steps_override_epoch_length_and_keep_pairs():
    tracklets = _tracklets(num_ids=4, cams=(0, 1), per_cam=1)  # 8 tracklets, 4 ids
    sampler = PairedBatchSampler(tracklets, 4, seed=0, steps=25)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 25
    for batch in batches:
        assert tracklets[batch[0]].pid == tracklets[batch[2]].pid
        assert tracklets[batch[1]].pid == tracklets[batch[3]].pid
    # each pass over the pool uses every tracklet once as a probe
    counts = Counter(i for batch in batches[:4] for i in batch[:2])
    assert sorted(counts) == list(range(8)) and set(counts.values()) == {1}


def test_few_identities_repeat_only_when_unavoidable():
    tracklets = _tracklets(num_ids=2, cams=(0, 1), per_cam=4)  # 16 tracklets, 2 ids
    batches = list(PairedBatchSampler(tracklets, 8, seed=0))
    assert len(batches) == 4
    for batch in batches:
        assert {tracklets[i].pid for i in batch[:4]} == {0, 1}  # both identities, then repeats


def test_distinct_identities_in_every_batch_of_many_epochs():
    rng = np.random.default_rng(0)  # unbalanced: identities with 1..12 tracklets
    tracklets = [
        Tracklet(("f",), pid=p, camid=int(c)) for p in range(30) for c in rng.integers(0, 3, rng.integers(1, 13))
    ]
    sampler = PairedBatchSampler(tracklets, 16, seed=0, steps=60)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for batch in sampler:
            assert len({tracklets[i].pid for i in batch[:8]}) == 8


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(batch_size=7), "batch_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=4, steps=0), "steps"),
        (dict(batch_size=4, seed=-1), "seed"),
        (dict(batch_size=400), "batch_size"),
    ],
)
def test_sampler_rejects_bad_arguments(kwargs, name):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ValueError, match=name):
        PairedBatchSampler(_tracklets(), **kwargs)
