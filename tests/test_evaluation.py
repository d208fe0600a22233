"""CMC / mAP under the MARS protocol: hand-made cases and vectorised == reference."""

import numpy as np
import pytest
import torch

from grl.evaluation import average_splits, evaluate_ranking, evaluate_ranking_reference, pairwise_distance

METRICS = ("mAP", "rank1", "rank5", "rank10", "rank20")


def _assert_same(a, b):
    for key in METRICS:
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    np.testing.assert_allclose(a["cmc"], b["cmc"], atol=1e-6)
    assert (a["num_queries"], a["num_skipped"]) == (b["num_queries"], b["num_skipped"])


def _random_problem(seed, q=60, g=400, ids=25, cams=4, ties=False):
    rng = np.random.default_rng(seed)
    g_pids, g_cams = rng.integers(0, ids, g), rng.integers(0, cams, g)
    g_pids[rng.random(g) < 0.05] = -1  # junk
    q_pids, q_cams = rng.integers(0, ids + 3, q), rng.integers(0, cams, q)  # some ids absent: skipped
    dist = rng.integers(0, 4, (q, g)).astype(np.float32) if ties else rng.random((q, g)).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


# ---- hand-made ------------------------------------------------------------------
@pytest.mark.parametrize("evaluate", [evaluate_ranking, evaluate_ranking_reference])
def test_known_values(evaluate):
    # query 0 (pid 1, cam 0): ranked gallery = [g0 pid2, g1 pid1 cam0 (removed), g2 pid1 cam1, g3 pid3, g4 pid1 cam2]
    #   kept ranking: pid2, pid1, pid3, pid1 -> first hit at rank 2; AP = (1/2 + 2/4) / 2 = 0.5
    g_pids, g_cams = [2, 1, 1, 3, 1], [0, 0, 1, 1, 2]
    dist = [
        [0.1, 0.2, 0.3, 0.4, 0.5],
        [0.5, 0.4, 0.3, 0.2, 0.1],
    ]  # query 1 (pid 3, cam 1): its only match g3 is removed -> skipped
    out = evaluate(dist, [1, 3], g_pids, [0, 1], g_cams, max_rank=3)
    assert (out["num_queries"], out["num_skipped"]) == (1, 1)
    assert out["cmc"] == [0.0, 100.0, 100.0] and out["rank1"] == 0.0 and out["rank5"] == 100.0
    assert out["mAP"] == pytest.approx(50.0)
    # query 1 seen by camera 0: g3 becomes a cross-camera positive, ranked 2nd (after g4): AP 1/2
    out = evaluate(dist, [1, 3], g_pids, [0, 0], g_cams)
    assert out["num_queries"] == 2 and out["mAP"] == pytest.approx((50.0 + 100.0 / 2) / 2)
    assert out["rank1"] == 0.0 and out["cmc"][1] == 100.0 and len(out["cmc"]) == 20


@pytest.mark.parametrize("evaluate", [evaluate_ranking, evaluate_ranking_reference])
def test_ties_break_by_gallery_index_and_junk_never_counts(evaluate):
    # all distances equal: the ranking is the gallery order
    out = evaluate([[1.0] * 4], [7], [-1, 5, 7, 7], [0], [1, 1, 1, 2])
    # junk g0 is dropped; kept: g1 (pid5), g2 (pid7), g3 (pid7) -> hits at ranks 2, 3
    assert out["cmc"][:3] == [0.0, 100.0, 100.0]
    assert out["mAP"] == pytest.approx(100.0 * (1 / 2 + 2 / 3) / 2)
    with_junk = evaluate([[1.0] * 4], [7], [-1, 5, 7, 7], [0], [1, 1, 1, 2], junk_pid=None)
    assert with_junk["mAP"] == pytest.approx(100.0 * (1 / 3 + 2 / 4) / 2)


@pytest.mark.parametrize("evaluate", [evaluate_ranking, evaluate_ranking_reference])
def test_perfect_and_worst_rankings(evaluate):
    g_pids, g_cams = [0, 0, 1, 1], [1, 1, 0, 0]
    best = evaluate([[0, 1, 2, 3]], [0], g_pids, [0], g_cams)
    worst = evaluate([[3, 2, 1, 0]], [0], g_pids, [0], g_cams)
    assert best["mAP"] == 100.0 and best["rank1"] == 100.0
    assert worst["rank1"] == 0.0 and worst["cmc"][2] == 100.0
    assert worst["mAP"] == pytest.approx(100.0 * (1 / 3 + 2 / 4) / 2)


# ---- vectorised == reference --------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_equals_reference(seed, ties):
    problem = _random_problem(seed, ties=ties)
    ref = evaluate_ranking_reference(*problem)
    assert ref["num_skipped"] > 0  # the random problem has queries without positives
    _assert_same(evaluate_ranking(*problem), ref)
    _assert_same(evaluate_ranking(*problem, chunk_size=7), ref)  # chunking changes nothing


def test_vectorised_equals_reference_with_negative_and_signed_zero_distances():
    dist, *ids = _random_problem(9, ties=True)
    dist = dist - 2.0  # values -2..1 including 0
    dist[:, ::3] *= -1  # -0.0 appears; it ties with +0.0
    _assert_same(evaluate_ranking(dist, *ids), evaluate_ranking_reference(dist, *ids))


def test_feature_distances_end_to_end():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(10, 32))
    g_pids = np.repeat(np.arange(10), 6)
    gallery = torch.tensor(centres[g_pids] + 0.8 * rng.normal(size=(60, 32)))
    q_pids = np.arange(10)
    query = torch.tensor(centres + 0.8 * rng.normal(size=(10, 32)))
    g_cams, q_cams = np.tile(np.arange(3), 20), np.zeros(10, int)
    for metric in ("cosine", "euclidean"):
        dist = pairwise_distance(query, gallery, metric)
        out = evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams)
        _assert_same(out, evaluate_ranking_reference(dist, q_pids, g_pids, q_cams, g_cams))
        assert out["mAP"] > 50.0  # the features carry identity


# ---- distances ----------------------------------------------------------------------
def test_pairwise_distance_values():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    g = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    cos = pairwise_distance(q, g, "cosine")
    torch.testing.assert_close(cos, torch.tensor([[0.0, 1.0, 1 - 2**-0.5], [1.0, 0.0, 1 - 2**-0.5]]))
    euc = pairwise_distance(q, g, "euclidean")
    torch.testing.assert_close(euc, torch.cdist(q, g))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="metric"):
        pairwise_distance(torch.ones(2, 3), torch.ones(4, 3), "manhattan")
    with pytest.raises(ValueError, match="same D"):
        pairwise_distance(torch.ones(2, 3), torch.ones(4, 5))
    with pytest.raises(ValueError, match="g_pids"):
        evaluate_ranking(np.zeros((2, 3)), [0, 1], [0, 1], [0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="2-D"):
        evaluate_ranking(np.zeros(3), [0], [0, 1, 2], [0], [0, 0, 0])
    with pytest.raises(ValueError, match="no query has a valid positive"):
        evaluate_ranking(np.zeros((1, 2)), [5], [0, 1], [0], [0, 0])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking(np.full((1, 2), np.nan), [0], [0, 1], [0], [1, 1])


# ---- splits -------------------------------------------------------------------------
def test_average_splits():
    a = {
        "mAP": 50.0,
        "rank1": 40.0,
        "rank5": 60.0,
        "rank10": 70.0,
        "rank20": 80.0,
        "cmc": [40.0, 50.0],
        "num_queries": 10,
        "num_skipped": 1,
    }
    b = {**a, "mAP": 70.0, "rank1": 60.0, "cmc": [60.0, 70.0], "num_queries": 12, "num_skipped": 0}
    out = average_splits([a, b])
    assert out["mAP"] == 60.0 and out["rank1"] == 50.0 and out["rank5"] == 60.0
    assert out["cmc"] == [50.0, 60.0] and out["num_splits"] == 2
    assert (out["num_queries"], out["num_skipped"]) == (22, 1)
    with pytest.raises(ValueError, match="results is empty"):
        average_splits([])


def test_very_large_gallery_uses_exact_integer_keys():
    # above 2**21 gallery items the ranking keys switch from float64 to int64
    rng = np.random.default_rng(2)
    g = 2**21 + 3
    dist = rng.integers(0, 40, (1, g)).astype(np.float32)
    g_pids, g_cams = rng.integers(0, 5000, g), rng.integers(0, 2, g)
    args = (dist, g_pids[:1], g_pids, [0], g_cams)
    _assert_same(evaluate_ranking(*args), evaluate_ranking_reference(*args))


def test_first_ranked_names_what_ranks_first():
    from grl.evaluation import first_ranked

    # gallery: 0 junk, 1 query's own id+camera (excluded), 2 look-alike same cam, 3 match, 4 distractor, 5 stranger
    g_pids, g_cams = [-1, 7, 8, 7, 0, 9], [0, 0, 0, 1, 1, 1]
    groups = {7: 1, 8: 1, 9: 2}
    dist = torch.tensor(
        [
            [0.0, 0.0, 0.1, 0.2, 0.3, 0.4],  # junk and own camera skipped -> look-alike in the same camera
            [0.9, 0.9, 0.5, 0.1, 0.3, 0.4],  # match
            [0.9, 0.9, 0.5, 0.5, 0.2, 0.2],  # distractor and stranger tie: the lower index wins
            [0.9, 0.9, 0.5, 0.5, 0.5, 0.1],  # stranger in another camera
        ]
    )
    got = first_ranked(dist, [7, 7, 7, 7], g_pids, [0, 0, 0, 0], g_cams, groups)
    assert got == {"distractor": 1, "look-alike, same camera": 1, "match": 1, "other id, other camera": 1}
    # without groups the look-alike is just another id
    assert first_ranked(dist[:1], [7], g_pids, [0], g_cams) == {"other id, same camera": 1}


def test_ranked_gallery_follows_the_protocol():
    from grl.evaluation import ranked_gallery

    # gallery: 0 same id same cam (removed), 1 junk (removed), 2 other id, 3 same id other cam, 4 tie with 2
    dist = torch.tensor([0.0, 0.1, 0.3, 0.5, 0.3])
    pids = torch.tensor([7, -1, 2, 7, 3])
    cams = torch.tensor([1, 0, 1, 0, 2])
    assert ranked_gallery(dist, 7, 1, pids, cams) == [2, 4, 3]  # ties by index, as evaluate_ranking
    assert ranked_gallery(dist, 7, 1, pids, cams, k=2) == [2, 4]
    assert ranked_gallery(dist, 7, 1, pids, cams, junk_pid=None) == [1, 2, 4, 3]
    # the first remaining match's position is what evaluate_ranking's Rank-k counts
    result = evaluate_ranking(dist[None], torch.tensor([7]), pids, torch.tensor([1]), cams)
    assert result["rank1"] == 0 and result["rank5"] == 100
