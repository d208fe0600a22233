"""Benchmark CMC + mAP on a MARS-sized problem: ``python -m grl.bench.evaluation``.

1980 queries x 11310 gallery tracklets, 625 identities, 6 cameras (the release's
MARS test protocol, gallery including the queries), random 2048-d features with an
identity signal. Rows: the cosine distance matrix, the vectorised
:func:`grl.evaluation.evaluate_ranking`, the per-query
:func:`grl.evaluation.evaluate_ranking_reference`, and k-reciprocal re-ranking
(:func:`grl.reranking.re_ranking`, k1=20, k2=6, λ=0.3, from the three precomputed
distance matrices) followed by the ranking metrics (goal: at most 4 GiB and 60 s).

Each row runs in a fresh process; ``peak_mib`` is the peak resident memory *above*
what the process held before the measured call (Linux peak-RSS mark, reset just
before the call), so it covers torch and numpy allocations alike, which tracemalloc
would not. ``cpu_s`` is the process CPU time (all threads): on a shared machine it
is steadier than ``wall_s``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pandas as pd
import torch

NUM_QUERY, NUM_GALLERY, NUM_IDS, NUM_CAMS, DIM = 1980, 11310, 625, 6, 2048


def make_problem(seed: int = 0, dim: int = DIM):
    """Identities, cameras and features shaped like the MARS test set (queries are gallery items)."""
    rng = np.random.default_rng(seed)
    g_pids = np.concatenate([np.arange(NUM_IDS), rng.integers(0, NUM_IDS, NUM_GALLERY - NUM_IDS)])
    g_cams = rng.integers(0, NUM_CAMS, NUM_GALLERY)
    q_index = rng.choice(NUM_GALLERY, NUM_QUERY, replace=False)
    centres = rng.standard_normal((NUM_IDS, dim), dtype=np.float32)
    g_feats = centres[g_pids] + 4.0 * rng.standard_normal((NUM_GALLERY, dim), dtype=np.float32)
    return (
        torch.from_numpy(g_feats[q_index]),
        torch.from_numpy(g_feats),
        g_pids[q_index],
        g_pids,
        g_cams[q_index],
        g_cams,
    )


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> int:
    """Reset the peak-RSS mark (Linux ``clear_refs`` 5) and return the current RSS in KiB."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_kib("VmRSS")


def _measure(task: str, path: str) -> dict:
    """Runs in a fresh process: time and peak-memory growth of one call."""
    from grl.evaluation import evaluate_ranking, evaluate_ranking_reference, pairwise_distance

    def load(name):  # plain .npy: read straight into the array, no transient copy
        return np.load(os.path.join(path, name + ".npy"))

    args = [load(k) for k in ("q_pids", "g_pids", "q_cams", "g_cams")]
    # warm up on a tiny problem: the first call pages in library code, which is not the call's memory
    tiny = torch.rand(3, 5)
    pairwise_distance(tiny, tiny)
    for fn in (evaluate_ranking, evaluate_ranking_reference):
        fn(tiny[:, :3], [0, 1, 2], [0, 1, 2], [0, 0, 0], [1, 1, 1])
    if task.startswith("re_ranking"):
        from grl.reranking import re_ranking

        dist, q_q, g_g = (torch.from_numpy(load(k)) for k in ("dist", "q_q", "g_g"))
        re_ranking(tiny[:2, :3], tiny[:2, :2].abs(), tiny[:3, :3].abs())
        before = _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        result = evaluate_ranking(re_ranking(dist, q_q, g_g), *args)
    elif task == "distance (cosine, D=2048)":
        q, g = torch.from_numpy(load("query")), torch.from_numpy(load("gallery"))
        before = _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        pairwise_distance(q, g, "cosine")
        result: dict = {}
    else:
        dist = torch.from_numpy(load("dist"))
        fn = evaluate_ranking if task.startswith("evaluate_ranking ") else evaluate_ranking_reference
        before = _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        result = fn(dist, *args)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "task": task,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_mib": round((_status_kib("VmHWM") - before) / 1024, 1),
        "mAP": round(result["mAP"], 4) if result else None,
        "rank1": round(result["rank1"], 4) if result else None,
        "num_queries": result.get("num_queries"),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow per-query reference")
    parser.add_argument("--no-rerank", action="store_true", help="skip the k-reciprocal re-ranking row")
    opts = parser.parse_args(argv)

    from grl.evaluation import pairwise_distance

    query, gallery, *ids = make_problem(opts.seed)
    dist = pairwise_distance(query, gallery, "cosine").numpy()
    tasks = ["distance (cosine, D=2048)", "evaluate_ranking (vectorised)"]
    if not opts.no_reference:
        tasks.append("evaluate_ranking_reference (per-query loop)")
    extra = {}
    if not opts.no_rerank:
        tasks.append("re_ranking (k1=20, k2=6, λ=0.3) + evaluate_ranking")
        extra = {
            "q_q": pairwise_distance(query, query, "cosine").numpy(),
            "g_g": pairwise_distance(gallery, gallery, "cosine").numpy(),
        }
    with tempfile.TemporaryDirectory() as tmp:
        arrays = dict(
            query=query.numpy(),
            gallery=gallery.numpy(),
            dist=dist,
            **extra,
            **dict(zip(("q_pids", "g_pids", "q_cams", "g_cams"), ids)),
        )
        for name, array in arrays.items():
            np.save(os.path.join(tmp, name + ".npy"), array)
        path = tmp
        rows = []
        for task in tasks:  # one fresh process per row, one after another
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                rows.append(pool.submit(_measure, task, path).result())
    table = pd.DataFrame(rows)
    print(f"MARS-sized evaluation: {NUM_QUERY} queries x {NUM_GALLERY} gallery, {NUM_IDS} ids, {NUM_CAMS} cameras")
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
