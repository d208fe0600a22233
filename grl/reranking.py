"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), vectorised and memory-bounded.

The final distance of query i to gallery item j is ``(1 - λ)·d_J(i, j) + λ·d(i, j)``: ``d`` is the
squared input distance, each row divided by its maximum, and ``d_J`` the Jaccard distance of the
two items' k-reciprocal sets, encoded as weight vectors V (weights ``exp(-d)`` on the set, summed
to 1) and averaged over each item's ``k2`` nearest neighbours (local query expansion).

Every item's neighbours are ranked by distance with ties broken by index (a stable sort), so the
result is one well-defined function of the inputs; ``tests/test_reranking.py`` checks it against a
direct per-query implementation of the paper's algorithm. Nothing the size of the whole problem is
sorted: each row needs only its ``k1 + 1`` nearest items (``topk`` on tie-free integer keys).
At MARS scale (1980 queries, 11310 gallery: N = 13290) the dense N×N matrices (d, V, the expanded
V and its transpose, 0.7 GB each in float32) are never more than two at a time.
"""

from __future__ import annotations

import torch

from grl.evaluation import ranking_keys


def _as_distances(name: str, value, shape: tuple[int, int] | None = None) -> torch.Tensor:
    d = torch.as_tensor(value)
    d = d if d.dtype == torch.float64 else d.float()
    if d.ndim != 2:
        raise ValueError(f"re_ranking: {name} must be a 2-D distance matrix, got shape {tuple(d.shape)}")
    if shape is not None and tuple(d.shape) != shape:
        raise ValueError(f"re_ranking: {name} must have shape {shape}, got {tuple(d.shape)}")
    if not torch.isfinite(d).all() or (d < -1e-5).any():
        raise ValueError(
            f"re_ranking: {name} must hold finite, non-negative distances (not similarities); "
            "re-ranking supports cosine or Euclidean distances"
        )
    return d.clamp_min(0)  # 1 - cos of an item with itself can round to -1e-7


def _nearest(dist: torch.Tensor, k: int, chunk: int = 512) -> torch.Tensor:
    """(N,N) → (N,k) indices of each row's k smallest entries, ascending, ties by index."""
    k = min(k, dist.shape[1])
    out = torch.empty(dist.shape[0], k, dtype=torch.long)
    for start in range(0, dist.shape[0], chunk):
        keys = ranking_keys(dist[start : start + chunk].float())  # distinct keys: (distance, index) order
        out[start : start + chunk] = torch.topk(keys, k, dim=1, largest=False, sorted=True).indices
    return out


def _reciprocal(ranks: torch.Tensor, k: int) -> torch.Tensor:
    """mask (N,k+1): ``ranks[i, j]`` is a k-reciprocal neighbour of i (i is within its k+1 nearest)."""
    forward = ranks[:, : k + 1]  # (N,k+1)
    backward = ranks[forward][:, :, : k + 1]  # (N,k+1,k+1): each neighbour's own nearest
    own = torch.arange(ranks.shape[0])[:, None, None]
    return (backward == own).any(dim=2)


def re_ranking(q_g, q_q, g_g, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, chunk: int = 256) -> torch.Tensor:
    """Re-ranked (Q,G) distances from the query-gallery, query-query and gallery-gallery distance
    matrices (any non-negative distance; the paper uses Euclidean). float32, or float64 when the
    inputs are (the quick profile's portable evaluation); neighbours are ranked in float32.

    k1: size of the k-reciprocal sets; k2: neighbours averaged in the query expansion (1 = none);
    lambda_value: weight of the original distance in the final one.
    """
    if k1 < 1 or k2 < 1:
        raise ValueError(f"re_ranking: k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"re_ranking: lambda_value must be in [0, 1], got {lambda_value}")
    q_g = _as_distances("q_g", q_g)
    Q, G = q_g.shape
    q_q = _as_distances("q_q", q_q, (Q, Q))
    g_g = _as_distances("g_g", g_g, (G, G))
    dtype = torch.float64 if torch.float64 in (q_g.dtype, q_q.dtype, g_g.dtype) else torch.float32
    q_g, q_q, g_g = q_g.to(dtype), q_q.to(dtype), g_g.to(dtype)
    N = Q + G

    # d: squared distances, row i divided by the maximum of column i (the paper's code divides
    # columns, then transposes), (N,N)
    full = torch.cat([torch.cat([q_q, q_g], dim=1), torch.cat([q_g.T, g_g], dim=1)], dim=0).pow_(2)
    column_max = full.amax(dim=0).clamp_min(torch.finfo(dtype).tiny)
    dist = full.T.div(column_max[:, None])  # (N,N), a new contiguous matrix
    del full

    half = int(round(k1 / 2))  # Python's round is the paper code's numpy.around: half to even
    ranks = _nearest(dist, max(k1 + 1, k2))  # (N,K)
    forward = ranks[:, : k1 + 1]
    is_reciprocal = _reciprocal(ranks, k1)  # (N,k1+1)
    half_ranks = ranks[:, : half + 1]  # (N,h+1)
    half_reciprocal = _reciprocal(ranks, half)  # (N,h+1)

    V = torch.zeros(N, N, dtype=dtype)
    for start in range(0, N, chunk):
        rows = slice(start, start + chunk)
        fwd, rec = forward[rows], is_reciprocal[rows]  # (c,k1+1)
        cand, cand_ok = half_ranks[fwd], half_reciprocal[fwd]  # (c,k1+1,h+1): each candidate's own set
        in_set = (cand[..., None] == fwd[:, None, None, :]) & rec[:, None, None, :]  # (c,k1+1,h+1,k1+1)
        overlap = (in_set.any(dim=3) & cand_ok).sum(dim=2)  # |R(cand, k1/2) ∩ R(i, k1)|
        accept = rec & (overlap > 2.0 / 3.0 * cand_ok.sum(dim=2))  # (c,k1+1)
        members = torch.zeros(fwd.shape[0], N, dtype=torch.bool)
        members.scatter_(1, fwd, rec)  # R(i, k1)
        extra = cand_ok & accept[..., None]  # (c,k1+1,h+1)
        row_of = torch.arange(fwd.shape[0])[:, None, None].expand_as(cand)
        members[row_of[extra], cand[extra]] = True  # ∪ R(cand, k1/2) of the accepted candidates
        weights = torch.where(members, torch.exp(-dist[rows]), torch.zeros((), dtype=dtype))
        V[rows] = weights / weights.sum(dim=1, keepdim=True)

    query_dist = dist[:Q, Q:].clone()  # (Q,G): all that is left of d
    del dist

    if k2 > 1:  # local query expansion: V_i ← mean of V over i's k2 nearest
        expanded = torch.empty_like(V)
        for start in range(0, N, chunk):
            expanded[start : start + chunk] = V[ranks[start : start + chunk, :k2]].mean(dim=1)
        V = expanded
        del expanded

    # Jaccard: Σ_k min(V_ik, V_jk) over the (few) k where the query's V is non-zero
    V_columns = V.T.contiguous()  # row k = V[:, k]
    query_V = V[:Q].clone()
    del V
    gallery_part = V_columns[:, Q:]  # (N,G) view
    jaccard = torch.empty(Q, G, dtype=dtype)
    for i in range(Q):
        nonzero = query_V[i].nonzero().flatten()
        shared = torch.minimum(gallery_part[nonzero], query_V[i, nonzero][:, None]).sum(dim=0)  # (G,)
        jaccard[i] = 1 - shared / (2 - shared)
    return jaccard * (1 - lambda_value) + query_dist * lambda_value
