"""Re-ID ranking metrics: CMC and mAP under the MARS protocol.

For each query the gallery is ranked by distance, compared in float32, ties broken
by gallery index (as a stable sort does). Gallery items with the query's id *and*
camera are then removed, and junk (pid ``junk_pid``, -1) never counts. CMC rank-k is
the fraction of queries whose first correct match is within the first k remaining
items; AP is the mean, over the query's remaining positives, of the precision at
each positive's rank. Queries with no remaining positive are skipped and counted.
All metrics are in percent.

:func:`evaluate_ranking` is vectorised (masks, one ``searchsorted`` per chunk of
queries and cumulative sums; no full sort of the gallery);
:func:`evaluate_ranking_reference` is the slow, per-query textbook version it is
tested against (and benchmarked against in ``grl.bench.evaluation``).
"""

from __future__ import annotations

import numpy as np
import torch

RANKS = (1, 5, 10, 20)
_LARGEST = {torch.float64: float("inf"), torch.int64: torch.iinfo(torch.int64).max}


def pairwise_distance(query, gallery, metric: str = "cosine") -> torch.Tensor:
    """(Q,D) x (G,D) -> (Q,G): ``1 - cos`` (rows L2-normalised) or Euclidean distance."""
    query, gallery = torch.as_tensor(query), torch.as_tensor(gallery)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery must be (Q,D) and (G,D) with the same D, got {tuple(query.shape)} and {tuple(gallery.shape)}"
        )
    # float64 features (the quick profile's portable runs) keep float64 distances: a float32 matmul's
    # last bits depend on the CPU's instruction set.
    dtype = torch.float64 if torch.float64 in (query.dtype, gallery.dtype) else torch.float32
    query, gallery = query.to(dtype), gallery.to(dtype)
    if metric == "cosine":
        q = torch.nn.functional.normalize(query, dim=1)
        g = torch.nn.functional.normalize(gallery, dim=1)
        return 1.0 - q @ g.T
    if metric == "euclidean":
        sq = (query**2).sum(1, keepdim=True) + (gallery**2).sum(1) - 2.0 * query @ gallery.T
        return sq.clamp_min(0).sqrt()
    raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")


def _prepare(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    distmat = torch.as_tensor(distmat).float()  # both implementations rank in float32
    q_pids, g_pids, q_camids, g_camids = (
        torch.as_tensor(np.asarray(a)).long().reshape(-1) for a in (q_pids, g_pids, q_camids, g_camids)
    )
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {tuple(distmat.shape)}")
    q, g = distmat.shape
    for name, arr, n in (
        ("q_pids", q_pids, q),
        ("q_camids", q_camids, q),
        ("g_pids", g_pids, g),
        ("g_camids", g_camids, g),
    ):
        if arr.numel() != n:
            raise ValueError(
                f"{name} has {arr.numel()} entries but distmat has shape {tuple(distmat.shape)} (expected {n})"
            )
    if any(torch.isnan(distmat[i : i + 256]).any() for i in range(0, distmat.shape[0], 256)):  # chunked: no QxG mask
        raise ValueError("distmat contains NaN: distances must be comparable")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    return distmat, q_pids, g_pids, q_camids, g_camids


def _result(
    first_hit_ranks: torch.Tensor, aps: torch.Tensor, num_skipped: int, max_rank: int, per_query: bool = False
) -> dict:
    """first_hit_ranks: 0-based rank of the first correct match per valid query."""
    num = int(first_hit_ranks.numel())
    if num == 0:
        raise ValueError(
            f"no query has a valid positive in the gallery (all {num_skipped} skipped): nothing to evaluate"
        )
    ks = torch.arange(1, max(max_rank, max(RANKS)) + 1)
    cmc = (first_hit_ranks[None, :] < ks[:, None]).double().mean(1) * 100.0
    out = {"mAP": float(aps.double().mean() * 100.0)}
    out.update({f"rank{k}": float(cmc[k - 1]) for k in RANKS})
    out.update({"cmc": [float(c) for c in cmc[:max_rank]], "num_queries": num, "num_skipped": int(num_skipped)})
    if per_query:  # what the study's variance analysis resamples (grl.bench.variance)
        out["query_ap"] = (aps.double() * 100.0).tolist()
        out["query_rank1"] = ((first_hit_ranks == 0).double() * 100.0).tolist()
    return out


def ranking_keys(dist: torch.Tensor) -> torch.Tensor:
    """float32 (c,G) -> keys whose order is (distance, gallery index), all distinct.

    A float32's bit pattern, with the magnitude bits of negatives flipped, is a signed
    int32 in the same order as the floats; the gallery index fills the low bits. The
    keys are exact integers held in float64 (faster to build and search than int64)
    while they stay below 2**53, i.e. for galleries up to 2**21 items.
    """
    bits = (dist + 0.0).contiguous().view(torch.int32)  # + 0.0 turns -0.0 into +0.0 (they tie)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    index = torch.arange(dist.shape[1])
    shift = max(1, (dist.shape[1] - 1).bit_length())
    if shift <= 21:
        return bits.double() * float(2**shift) + index.double()
    return (bits.long() << 32) | index


def evaluate_ranking(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 20,
    *,
    junk_pid: int | None = -1,
    chunk_size: int = 256,
    per_query: bool = False,
) -> dict:
    """CMC + mAP (percent) of a (Q,G) distance matrix; see the module docstring.

    Returns ``{"mAP", "rank1", "rank5", "rank10", "rank20", "cmc" (max_rank values),
    "num_queries" (valid), "num_skipped" (no cross-camera positive)}``; with ``per_query`` also
    ``"query_ap"`` and ``"query_rank1"`` (percent, one value per valid query, in query order).

    Distances are compared in float32. Instead of sorting each gallery row (the cost
    of the textbook method), only the query's positives are ordered; every kept item
    is then bucketed by how many positives rank ahead of it (``searchsorted`` on
    unique integer keys, which encode the tie-break), and a cumulative count of the
    buckets gives each positive's rank among the kept items. ``chunk_size`` queries
    are processed at a time, bounding memory to a few ``chunk_size x G`` arrays.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _prepare(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    firsts, aps, skipped = [], [], 0
    for start in range(0, distmat.shape[0], chunk_size):
        stop = start + chunk_size
        same_id = g_pids[None, :] == q_pids[start:stop, None]
        keep = ~(same_id & (g_camids[None, :] == q_camids[start:stop, None]))
        if junk_pid is not None:
            keep &= g_pids[None, :] != junk_pid
        hit = same_id & keep
        num_pos = hit.sum(1)
        valid = num_pos > 0
        skipped += int((~valid).sum())
        if not valid.any():
            continue
        keys = ranking_keys(distmat[start:stop])
        most = int(num_pos.max())
        # the positives' keys in rank order; rows with fewer positives are padded with +inf
        pos_keys = torch.where(hit, keys, _LARGEST[keys.dtype]).topk(most, dim=1, largest=False).values
        ahead = torch.searchsorted(pos_keys, keys)  # positives ranked before each item
        bucket_sizes = torch.zeros(keys.shape[0], most + 1, dtype=torch.long).scatter_add_(1, ahead, keep.long())
        # kept items up to and including the p-th positive = its 1-based rank among kept items
        rank1b = bucket_sizes.cumsum(1)[:, :most]
        hits_so_far = torch.arange(1, most + 1)
        precision = (hits_so_far / rank1b.double()) * (hits_so_far[None, :] <= num_pos[:, None])
        aps.append(precision[valid].sum(1) / num_pos[valid].double())
        firsts.append(rank1b[valid, 0] - 1)
    firsts_t = torch.cat(firsts) if firsts else torch.zeros(0, dtype=torch.long)
    aps_t = torch.cat(aps) if aps else torch.zeros(0, dtype=torch.float64)
    return _result(firsts_t, aps_t, skipped, max_rank, per_query)


def evaluate_ranking_reference(
    distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 20, *, junk_pid: int | None = -1
) -> dict:
    """Slow reference of :func:`evaluate_ranking`: one query at a time, textbook AP.

    Kept for tests and the benchmark; use :func:`evaluate_ranking` in real code.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _prepare(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    distmat, q_pids, g_pids, q_camids, g_camids = (a.numpy() for a in (distmat, q_pids, g_pids, q_camids, g_camids))
    firsts, aps, skipped = [], [], 0
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        remove = (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        if junk_pid is not None:
            remove |= g_pids[order] == junk_pid
        matches = g_pids[order][~remove] == q_pids[i]
        if not matches.any():
            skipped += 1
            continue
        firsts.append(int(np.flatnonzero(matches)[0]))
        hits, precisions = 0, []
        for k in np.flatnonzero(matches):  # precision at each correct match (rank k, 0-based)
            hits += 1
            precisions.append(hits / (k + 1))
        aps.append(float(np.mean(precisions)))
    return _result(torch.tensor(firsts, dtype=torch.long), torch.tensor(aps, dtype=torch.float64), skipped, max_rank)


def average_splits(results: list[dict]) -> dict:
    """Mean of each metric (and of ``cmc`` element-wise) over splits, plus ``num_splits``.

    ``num_queries`` and ``num_skipped`` are totals over the splits.
    """
    if not results:
        raise ValueError("results is empty: need at least one split's metric dict")
    out: dict = {}
    for key in results[0]:
        values = [r[key] for r in results]
        if key in ("num_queries", "num_skipped"):
            out[key] = int(sum(values))
        elif key == "cmc":
            if len({len(v) for v in values}) != 1:
                raise ValueError(f"cmc lists differ in length across splits: {[len(v) for v in values]}")
            out[key] = [float(x) for x in np.mean(np.asarray(values, dtype=np.float64), axis=0)]
        elif isinstance(values[0], (int, float)):
            out[key] = float(np.mean(values))
    out["num_splits"] = len(results)
    return out


def first_ranked(
    distmat, q_pids, g_pids, q_camids, g_camids, groups: dict[int, int] | None = None, *, junk_pid: int | None = -1
) -> dict[str, int]:
    """What each query's top-ranked gallery item is, under the protocol of :func:`evaluate_ranking`.

    Counts of: "match" (the query's id, another camera), "look-alike, same camera" / "look-alike,
    other camera" (another id of the query's group in ``groups``, pid → group — e.g. the outfit
    groups of :func:`grl.data.synthetic.outfit_groups`), "distractor" (pid 0), "other id, same
    camera" / "other id, other camera". Ties go to the lower gallery index, as in the metrics.
    A diagnostic: a low Rank-1 with most top-1s in the query's own camera means camera bias.
    """
    distmat, q_pids, g_pids, q_camids, g_camids = _prepare(distmat, q_pids, g_pids, q_camids, g_camids, 1)
    excluded = (q_pids[:, None] == g_pids[None]) & (q_camids[:, None] == g_camids[None])  # (Q,G)
    if junk_pid is not None:
        excluded |= (g_pids == junk_pid)[None]
    ranked = ~excluded.all(dim=1)  # queries with anything left to rank
    top = torch.argmin(distmat.masked_fill(excluded, float("inf")), dim=1)[ranked]  # first minimum: lowest index
    query_pid, top_pid = q_pids[ranked], g_pids[top]
    same_cam = g_camids[top] == q_camids[ranked]
    group_of = lambda pids: torch.tensor([(groups or {}).get(int(p), -1) for p in pids], dtype=torch.long)  # noqa: E731
    query_group = group_of(query_pid)
    look_alike = (query_group >= 0) & (group_of(top_pid) == query_group)
    match, distractor = top_pid == query_pid, (top_pid != query_pid) & (top_pid == 0)
    other = ~match & ~distractor
    kinds = [
        ("match", match),
        ("distractor", distractor),
        ("look-alike, same camera", other & look_alike & same_cam),
        ("look-alike, other camera", other & look_alike & ~same_cam),
        ("other id, same camera", other & ~look_alike & same_cam),
        ("other id, other camera", other & ~look_alike & ~same_cam),
    ]
    counts = {kind: int(mask.sum()) for kind, mask in kinds if mask.any()}
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def ranked_gallery(
    distances, query_pid: int, query_camid: int, g_pids, g_camids, k: int | None = None, *, junk_pid: int | None = -1
) -> list[int]:
    """The gallery indices one query is ranked against under the protocol above, nearest first (ties by
    index): without the items of its own identity *and* camera and without junk. ``distances``: (G,)."""
    distances = torch.as_tensor(distances)
    g_pids, g_camids = torch.as_tensor(g_pids), torch.as_tensor(g_camids)
    order = torch.argsort(distances.float(), stable=True)
    keep = ~((g_pids[order] == query_pid) & (g_camids[order] == query_camid))
    if junk_pid is not None:
        keep &= g_pids[order] != junk_pid
    ranked = order[keep].tolist()
    return ranked if k is None else ranked[:k]
