"""k-reciprocal re-ranking against a direct, per-query implementation of the paper's algorithm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grl.reranking import re_ranking


def reference_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Zhong et al.'s algorithm written out loop by loop (numpy, float32), neighbours ranked by a
    stable sort so that ties go to the lower index."""
    q_g, q_q, g_g = (np.asarray(a, dtype=np.float32) for a in (q_g, q_q, g_g))
    Q = q_g.shape[0]
    original = np.concatenate([np.concatenate([q_q, q_g], axis=1), np.concatenate([q_g.T, g_g], axis=1)], axis=0)
    original = np.power(original, 2).astype(np.float32)
    original = np.transpose(original / np.max(original, axis=0))
    N = original.shape[0]
    V = np.zeros_like(original, dtype=np.float32)
    rank = np.argsort(original, axis=1, kind="stable")
    half = int(np.around(k1 / 2.0))
    for i in range(N):
        forward = rank[i, : k1 + 1]
        backward = rank[forward, : k1 + 1]
        reciprocal = forward[np.where(backward == i)[0]]
        expansion = reciprocal
        for candidate in reciprocal:
            c_forward = rank[candidate, : half + 1]
            c_backward = rank[c_forward, : half + 1]
            c_reciprocal = c_forward[np.where(c_backward == candidate)[0]]
            if len(np.intersect1d(c_reciprocal, reciprocal)) > 2.0 / 3 * len(c_reciprocal):
                expansion = np.append(expansion, c_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    if k2 != 1:
        V = np.stack([np.mean(V[rank[i, :k2], :], axis=0) for i in range(N)])
    jaccard = np.zeros((Q, N), dtype=np.float32)
    for i in range(Q):
        shared = np.zeros(N, dtype=np.float32)
        for k in np.where(V[i, :] != 0)[0]:
            rows = np.where(V[:, k] != 0)[0]
            shared[rows] += np.minimum(V[i, k], V[rows, k])
        jaccard[i] = 1 - shared / (2.0 - shared)
    final = jaccard * (1 - lambda_value) + original[:Q] * lambda_value
    return final[:, Q:]


def distances(features: np.ndarray) -> np.ndarray:
    return np.sqrt(((features[:, None, :] - features[None, :, :]) ** 2).sum(-1))


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (5, 1, 0.5), (3, 3, 0.0)])
def test_matches_the_direct_implementation(k1, k2, lam):
    rng = np.random.default_rng(k1)
    features = rng.normal(size=(30, 8)).astype(np.float32)
    features[rng.integers(0, 30, 12)] += rng.normal(size=(12, 8)).astype(np.float32)
    d = distances(features)
    Q = 9
    expected = reference_re_ranking(d[:Q, Q:], d[:Q, :Q], d[Q:, Q:], k1, k2, lam)
    ours = re_ranking(d[:Q, Q:], d[:Q, :Q], d[Q:, Q:], k1, k2, lam, chunk=7)
    assert ours.shape == (Q, 30 - Q)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6)


def test_ties_are_broken_by_index_like_a_stable_sort():
    # Integer distances on a small grid: many exact ties in every row.
    rng = np.random.default_rng(3)
    points = rng.integers(0, 3, size=(26, 2)).astype(np.float32)
    d = np.abs(points[:, None, :] - points[None, :, :]).sum(-1)  # Manhattan: integers, ties everywhere
    Q = 6
    expected = reference_re_ranking(d[:Q, Q:], d[:Q, :Q], d[Q:, Q:], k1=6, k2=3)
    ours = re_ranking(d[:Q, Q:], d[:Q, :Q], d[Q:, Q:], k1=6, k2=3)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6)


def test_re_ranking_improves_a_planted_structure():
    # Two tight clusters per identity seen from two "cameras": the k-reciprocal sets join them.
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16)) * 3
    feats = np.concatenate([centres + rng.normal(size=(6, 16)) * 0.8 for _ in range(4)]).astype(np.float32)
    d = distances(feats)
    Q = 6  # the first view of each identity queries the other three views
    final = re_ranking(d[:Q, Q:], d[:Q, :Q], d[Q:, Q:], k1=4, k2=2)
    gallery_ids = np.tile(np.arange(6), 3)
    assert (gallery_ids[final.argmin(dim=1).numpy()] == np.arange(6)).all()


def test_bad_input_says_what_is_wrong():
    good = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="q_q must have shape \\(2, 2\\)"):
        re_ranking(good, np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-negative distances \\(not similarities\\)"):
        re_ranking(-good, np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="k1 and k2 must be >= 1"):
        re_ranking(good, np.zeros((2, 2)), np.zeros((3, 3)), k1=0)
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(good, np.zeros((2, 2)), np.zeros((3, 3)), lambda_value=2)
    assert isinstance(re_ranking(torch.ones(2, 3), torch.zeros(2, 2), torch.zeros(3, 3)), torch.Tensor)
