"""Where the study's noise comes from: variance components of the CPU study's comparisons.

``python -m grl.bench.variance [--seeds 0-3] [--splits 0-4] [--jobs 2] [--out DIR] [--no-train]``

Trains (once; finished runs are reused) a few arms of the ``cpu`` profile on several seeds, with and
without common random numbers (``Config.crn``), and Baseline vs GRL on several splits of the
iLIDS-VID-like set; then prints, for each metric,

* **seeds**: the SD of one arm's metric across training seeds on the fixed test set;
* **bootstrap**: the SD of one trained model's metric when the test *identities* are resampled
  (with replacement, all queries of an identity together; the gallery fixed) — the test set's
  sampling noise, averaged over the arm's seeds;
* **splits**: the SD across the small set's splits (one seed);
* **paired difference**: the SD across seeds of an arm's difference to its reference row, with and
  without common random numbers, and its two parts from a two-way (seed × query) analysis of the
  per-query differences: a *training* part that no test set removes and a *per-query* part that
  shrinks as 1/Q; from them the SD projected for a test set of Q' queries (real MARS: 1980);
* the paired 95 % half-width that n seeds would give from that SD (t_{n-1} · SD / √n).

Design rule (written before the first measurement): the study's design is chosen from these SDs alone,
never from the arms' means; the means are not printed here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from grl.results.precision import REAL_MARS_QUERIES, table_markdown

# (arm, reference) pairs whose paired difference is measured on the MARS-like set: GRL vs Baseline (the
# headline), an ablation that keeps T (Table 3) and one that changes it (Table 4).
MARS_ARMS = ("baseline", "grl", "grl-no-memory", "grl-T4")
MARS_PAIRS = (("grl", "baseline"), ("grl-no-memory", "grl"), ("grl-T4", "grl"))
SMALL_ARMS = ("baseline", "grl")


# ------------------------------------------------------------------------------------- statistics
def two_way_components(d: np.ndarray) -> dict:
    """Two-way (seed × query) analysis of per-query differences ``d`` (S seeds, Q queries, no replication).

    Model: d[s, q] = μ + α_q + β_s + ε_sq. The mean over queries of seed s, D_s, varies across seeds with
    Var(D_s) = σ²_β + σ²_ε / Q. Returns the SD of D_s (measured), σ_β (the training part), σ_ε (per query)
    and a function of Q' giving the projected SD of D_s for a test set of Q' queries drawn alike."""
    d = np.asarray(d, dtype=np.float64)
    S, Q = d.shape
    if S < 2 or Q < 2:
        raise ValueError(f"two_way_components needs at least 2 seeds and 2 queries, got {d.shape}")
    row = d.mean(1, keepdims=True)
    col = d.mean(0, keepdims=True)
    grand = d.mean()
    ms_seed = Q * float(((row - grand) ** 2).sum()) / (S - 1)
    ms_resid = float(((d - row - col + grand) ** 2).sum()) / ((S - 1) * (Q - 1))
    var_train = max(0.0, (ms_seed - ms_resid) / Q)
    return {
        "seeds": S,
        "queries": Q,
        "sd_measured": float(np.std(row[:, 0], ddof=1)),
        "sd_training": math.sqrt(var_train),
        "sd_per_query": math.sqrt(ms_resid),
    }


def projected_sd(components: dict, queries: int) -> float:
    """SD of a seed's mean difference for a test set of ``queries`` queries (two_way_components' model)."""
    return math.sqrt(components["sd_training"] ** 2 + components["sd_per_query"] ** 2 / queries)


def bootstrap_sd(values: np.ndarray, groups: np.ndarray, draws: int = 1000, seed: int = 0) -> float:
    """SD of the mean of ``values`` (one per query) when the groups (identities) are resampled with replacement."""
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    ids, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(ids))
    counts = np.bincount(inverse, minlength=len(ids)).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(ids), size=(draws, len(ids)))
    means = sums[picks].sum(1) / counts[picks].sum(1)
    return float(means.std(ddof=1))


def half_width(sd: float, n: int, confidence: float = 0.95) -> float:
    """Half-width of the Student-t interval of a mean of n paired differences with SD ``sd``."""
    from scipy import stats

    if n < 2:
        return math.nan
    return float(stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n))


# ------------------------------------------------------------------------------------- training
def _configs(seeds, splits, arms=MARS_ARMS, crns=(False, True), overrides=None):
    from grl.experiments import PROFILES

    cpu = PROFILES["cpu"]
    overrides = overrides or {}
    out = []
    for crn in crns:
        for seed in seeds:
            for arm in arms:
                out.append(
                    (
                        f"mars-{arm}-seed{seed}-crn{int(crn)}",
                        cpu.config(arm, "mars", seed=seed).replace(crn=crn, **overrides),
                    )
                )
    for split in splits:
        for arm in SMALL_ARMS:
            out.append(
                (
                    f"ilidsvid-{arm}-split{split}-seed0-crn1",
                    cpu.config(arm, "ilidsvid", split=split, seed=0).replace(crn=True, **overrides),
                )
            )
    return out


def _train_and_score(name: str, values: dict, root: str) -> tuple[str, dict]:
    """Train one run (or reuse it) and score its main feature per query; in a one-thread worker."""
    import torch

    torch.set_num_threads(1)
    from grl.config import Config
    from grl.data import load_config_dataset
    from grl.engine import train
    from grl.engine.features import encode_test_set, load_run
    from grl.evaluation import evaluate_ranking
    from grl.utils import atomic_write_json

    config = Config.from_dict(values)
    run_dir = Path(root) / name
    scores = run_dir / "per_query.json"
    if scores.is_file():
        blob = json.loads(scores.read_text())
        if blob.get("key") == config.key():
            return name, blob
    started = time.perf_counter()
    dataset = load_config_dataset(config)
    train(config, run_dir, progress=False, dataset=dataset)
    _, model = load_run(run_dir)
    test = encode_test_set(model, dataset, config)
    feature = config.main_feature
    m = evaluate_ranking(test.distance(feature), *test.ids(), per_query=True)
    q_pids, g_pids, q_cams, g_cams = test.ids()
    valid = [bool(((g_pids == p) & (g_cams != c)).any()) for p, c in zip(q_pids.tolist(), q_cams.tolist())]
    blob = {
        "key": config.key(),
        "feature": feature,
        "mAP": m["mAP"],
        "rank1": m["rank1"],
        "query_ap": m["query_ap"],
        "query_rank1": m["query_rank1"],
        "query_pid": [p for p, v in zip(q_pids.tolist(), valid) if v],
        "seconds": time.perf_counter() - started,
    }
    atomic_write_json(scores, blob)
    return name, blob


def train_all(
    root: Path, seeds, splits, jobs: int, arms=MARS_ARMS, crns=(False, True), overrides=None
) -> dict[str, dict]:
    from tqdm import tqdm

    from grl.batch.shared import prepare_shared
    from grl.experiments import runs_for

    configs = _configs(seeds, splits, arms, crns, overrides)
    # Data, pretrained backbone and frame caches once, before the workers start (the Baseline's runs need them all).
    prepare_shared(runs_for("cpu", only="baseline", seeds=(0,)), jobs=jobs)
    results: dict[str, dict] = {}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_train_and_score, name, c.to_dict(), str(root)) for name, c in configs]
        for future in tqdm(futures, desc="variance runs", file=sys.stderr):
            name, blob = future.result()
            results[name] = blob
    return results


# ------------------------------------------------------------------------------------- analysis
def analyse(results: dict[str, dict], seeds, splits, arms=MARS_ARMS, crns=(False, True)) -> dict:
    """Every component of the module docstring from the runs' per-query scores (no training)."""
    out: dict = {"seeds": list(seeds), "splits": list(splits), "metrics": {}}
    pairs = [(a, r) for a, r in MARS_PAIRS if a in arms and r in arms]
    for metric, per_query in (("mAP", "query_ap"), ("rank1", "query_rank1")):
        rows = []
        for crn in (int(c) for c in crns):
            for arm in arms:
                runs = [results[f"mars-{arm}-seed{s}-crn{crn}"] for s in seeds]
                values = [r[metric] for r in runs]
                boot = [bootstrap_sd(r[per_query], r["query_pid"]) for r in runs]
                rows.append(
                    {
                        "what": f"MARS-like {arm}",
                        "crn": bool(crn),
                        "kind": "seeds (fixed test set)",
                        "sd": float(np.std(values, ddof=1)),
                        "n": len(values),
                    }
                )
                rows.append(
                    {
                        "what": f"MARS-like {arm}",
                        "crn": bool(crn),
                        "kind": "bootstrap of test identities",
                        "sd": float(np.mean(boot)),
                        "n": len(boot),
                    }
                )
            for arm, ref in pairs:
                d = np.array(
                    [
                        np.subtract(
                            results[f"mars-{arm}-seed{s}-crn{crn}"][per_query],
                            results[f"mars-{ref}-seed{s}-crn{crn}"][per_query],
                        )
                        for s in seeds
                    ]
                )
                comp = two_way_components(d)
                rows.append(
                    {
                        "what": f"MARS-like {arm} − {ref}",
                        "crn": bool(crn),
                        "kind": "paired difference, seeds",
                        "sd": comp["sd_measured"],
                        "n": comp["seeds"],
                        "sd_training": comp["sd_training"],
                        "sd_per_query": comp["sd_per_query"],
                        "queries": comp["queries"],
                        "sd_projected_real_size": projected_sd(comp, REAL_MARS_QUERIES),
                    }
                )
        for arm in SMALL_ARMS if splits else ():
            values = [results[f"ilidsvid-{arm}-split{k}-seed0-crn1"][metric] for k in splits]
            rows.append(
                {
                    "what": f"iLIDS-VID-like {arm}",
                    "crn": True,
                    "kind": "splits (seed 0)",
                    "sd": float(np.std(values, ddof=1)),
                    "n": len(values),
                }
            )
            boot = [
                bootstrap_sd(
                    results[f"ilidsvid-{arm}-split{k}-seed0-crn1"][per_query],
                    results[f"ilidsvid-{arm}-split{k}-seed0-crn1"]["query_pid"],
                )
                for k in splits
            ]
            rows.append(
                {
                    "what": f"iLIDS-VID-like {arm}",
                    "crn": True,
                    "kind": "bootstrap of test identities",
                    "sd": float(np.mean(boot)),
                    "n": len(boot),
                }
            )
        diffs = [
            results[f"ilidsvid-grl-split{k}-seed0-crn1"][metric]
            - results[f"ilidsvid-baseline-split{k}-seed0-crn1"][metric]
            for k in splits
        ]
        if len(diffs) >= 2:
            rows.append(
                {
                    "what": "iLIDS-VID-like grl − baseline",
                    "crn": True,
                    "kind": "paired difference, splits",
                    "sd": float(np.std(diffs, ddof=1)),
                    "n": len(diffs),
                }
            )
        out["metrics"][metric] = rows
    out["seconds_per_run"] = {
        ds: float(np.mean(t))
        for ds in ("mars", "ilidsvid")
        if (t := [r["seconds"] for k, r in results.items() if k.startswith(ds) and "seconds" in r])
    }
    return out


def _ints(text: str) -> list[int]:
    if "-" in text and "," not in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grl.bench.variance", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-3", help="training seeds of the MARS-like arms (default 0-3)")
    parser.add_argument("--splits", default="0-4", help="iLIDS-VID-like splits of Baseline vs GRL (default 0-4)")
    parser.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1), help="runs at once, one thread each")
    parser.add_argument("--out", default="", help="folder of the runs and variance.json (default: data/variance)")
    parser.add_argument("--no-train", action="store_true", help="analyse the runs already in --out only")
    parser.add_argument("--arms", default=",".join(MARS_ARMS), help=f"MARS-like arms (default {','.join(MARS_ARMS)})")
    parser.add_argument("--crn", default="0,1", help="common random numbers off (0) and/or on (1); default 0,1")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Config field for every run (a lever to measure, e.g. epochs=9); repeatable",
    )
    args = parser.parse_args(argv)
    from grl.paths import data_dir

    root = Path(args.out) if args.out else data_dir() / "variance"
    root.mkdir(parents=True, exist_ok=True)
    seeds, splits = _ints(args.seeds), _ints(args.splits) if args.splits else []
    arms = tuple(a for a in args.arms.split(",") if a)
    crns = tuple(bool(int(c)) for c in args.crn.split(",") if c)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    started = time.perf_counter()
    if args.no_train:
        results = {
            p.name: json.loads((p / "per_query.json").read_text())
            for p in root.iterdir()
            if (p / "per_query.json").is_file()
        }
    else:
        results = train_all(root, seeds, splits, args.jobs, arms, crns, overrides)
    analysis = analyse(results, seeds, splits, arms, crns)
    analysis["overrides"] = overrides
    analysis["wall_s"] = time.perf_counter() - started
    (root / "variance.json").write_text(json.dumps(analysis, indent=1))
    for metric in ("mAP", "rank1"):
        print(f"\n{table_markdown(analysis, metric)}")
    print(
        f"\nseconds per run (one thread, {args.jobs} at once): {analysis['seconds_per_run']}; written {root / 'variance.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
