"""How precise a study is: the paired half-widths its comparisons reach, against the targets, and what fewer
seeds would have given (the frontier of half-width against minutes).

The targets (docs/study.md, "The study's precision"): on the MARS-like set, the paired 95 % half-width of the mAP comparisons of Tables 3-6
and of GRL vs the Baseline at most 1.0 point (median) and 1.5 (max); GRL vs the Baseline's Rank-1 on the
iLIDS-VID- and PRID2011-like sets at most 2.0 points. Everything here is computed from a study's results frame
and its runs' wall times; nothing is asserted.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from grl.results.comparisons import comparisons

REAL_MARS_QUERIES = 1980

TARGET_MARS_MEDIAN, TARGET_MARS_MAX, TARGET_SMALL = 1.0, 1.5, 2.0


def headline_half_widths(frame: pd.DataFrame) -> dict:
    """From :func:`grl.results.comparisons.comparisons`' frame: the half-widths the targets are about.

    ``mars``: every MARS mAP comparison of Tables 3-6 plus GRL (F^l+F^h) vs the Baseline (Table 2);
    ``small``: GRL vs the Baseline's Rank-1 on each small set."""
    if frame.empty:
        return {"mars": [], "small": {}, "n_mars": 0, "n_small": {}}
    rows = headline_rows(frame)
    mars, small = rows[rows.dataset == "mars"], rows[rows.dataset != "mars"]
    return {
        "mars": [float(v) for v in mars.half_width],
        "small": {r.dataset: float(r.half_width) for r in small.itertuples()},
        "n_mars": int(mars.n.min()) if len(mars) else 0,
        "n_small": {r.dataset: int(r.n) for r in small.itertuples()},
    }


def meets_targets(widths: dict) -> dict[str, bool]:
    mars = [w for w in widths["mars"] if not math.isnan(w)]
    med = float(pd.Series(mars).median()) if mars else math.nan
    return {
        "mars_median": bool(mars) and med <= TARGET_MARS_MEDIAN,
        "mars_max": bool(mars) and max(mars) <= TARGET_MARS_MAX,
        "small": bool(widths["small"]) and all(w <= TARGET_SMALL for w in widths["small"].values()),
    }


def headline_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The comparisons the targets are about (see :func:`headline_half_widths`), with their ``half_width``."""
    grl_vs_base = (frame.table == 2) & (frame.row == "+TRL (F^l+F^h)")
    mars = (frame.dataset == "mars") & (frame.metric == "mAP") & (frame.table.isin([3, 4, 5, 6]) | grl_vs_base)
    small = grl_vs_base & (frame.metric == "rank1") & (frame.dataset != "mars")
    return frame[mars | small].assign(half_width=(frame.high - frame.low) / 2)


def over_target(frame: pd.DataFrame) -> pd.DataFrame:
    """The stopping rule of adaptive seeds (docs/study.md, "Adaptive seeds"): the headline comparisons that get one
    more paired sample. It reads the intervals' widths only, never their estimates.

    MARS-like mAP: while the median half-width exceeds its target, every comparison wider than that target; once
    the median is met, those wider than the max target. Small sets: GRL vs Baseline wider than its target. A
    comparison without an interval (fewer than 2 samples) is over target."""
    rows = headline_rows(frame)
    width = rows.half_width.fillna(math.inf)
    is_mars = rows.dataset == "mars"
    mars = width[is_mars]
    bound = TARGET_MARS_MEDIAN if len(mars) and mars.median() > TARGET_MARS_MEDIAN else TARGET_MARS_MAX
    return rows[(is_mars & (width > bound)) | (~is_mars & (width > TARGET_SMALL))]


def precision_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per target: what it asks, what this study reached, over how many samples, met or not."""
    widths = headline_half_widths(frame)
    met = meets_targets(widths)
    mars = pd.Series(widths["mars"], dtype=float)
    rows = [
        {
            "comparison": f"MARS-like mAP, Tables 3-6 and GRL vs Baseline ({len(mars)}), median",
            "target": f"≤ {TARGET_MARS_MEDIAN:.1f}",
            "half-width": f"{mars.median():.2f}" if len(mars) else "—",
            "samples": widths["n_mars"],
            "met": "yes" if met["mars_median"] else "no",
        },
        {
            "comparison": "MARS-like mAP, the same, max",
            "target": f"≤ {TARGET_MARS_MAX:.1f}",
            "half-width": f"{mars.max():.2f}" if len(mars) else "—",
            "samples": widths["n_mars"],
            "met": "yes" if met["mars_max"] else "no",
        },
    ]
    for ds, w in widths["small"].items():
        name = {"ilidsvid": "iLIDS-VID", "prid2011": "PRID2011"}.get(ds, ds)
        rows.append(
            {
                "comparison": f"{name}-like Rank-1, GRL vs Baseline",
                "target": f"≤ {TARGET_SMALL:.1f}",
                "half-width": f"{w:.2f}",
                "samples": widths["n_small"][ds],
                "met": "yes" if w <= TARGET_SMALL else "no",
            }
        )
    return pd.DataFrame(rows)


def frontier(ours: pd.DataFrame, wall_s: dict[tuple, float], seeds: Sequence[int], jobs: int = 2) -> pd.DataFrame:
    """Half-widths the study would have had with its first k seeds (k = 2 .. all), and the minutes those runs took.

    ``wall_s`` maps (experiment, dataset, split, seed) to a run's measured wall time; the minutes are the sum
    over the runs the first k seeds need, divided by ``jobs`` (runs trained at once), without the study's fixed
    cost (data, pretraining, report). The small sets' runs are on the first seed only, so they count in every row.
    """
    rows = []
    for k in range(2, len(seeds) + 1):
        kept = set(seeds[:k])
        part = ours[ours.seed.isin(kept)]
        widths = headline_half_widths(comparisons(part))
        mars = pd.Series(widths["mars"], dtype=float)
        minutes = sum(w for (e, d, sp, s), w in wall_s.items() if s in kept) / jobs / 60
        rows.append(
            {
                "seeds": k,
                "training minutes": round(minutes, 1),
                "MARS-like median half-width": round(float(mars.median()), 2) if len(mars) else math.nan,
                "MARS-like max half-width": round(float(mars.max()), 2) if len(mars) else math.nan,
                **{f"{d} Rank-1 half-width": round(w, 2) for d, w in widths["small"].items()},
            }
        )
    return pd.DataFrame(rows)


def seeds_for_target(sd: float, target: float, confidence: float = 0.95) -> int:
    """Smallest n with t_{n-1} · sd / √n ≤ target (a projection from a measured SD, not a measurement)."""
    from scipy import stats

    if sd <= 0:
        return 2
    n = 2
    while stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n) > target:
        n += 1
        if n > 100_000:
            return n
    return n


def projection(
    frame: pd.DataFrame, mars_minutes_per_seed: float, small_minutes_per_seed: float, splits: int = 10
) -> str:
    """Markdown: how many seeds the targets would take, projected from the SDs this study measured.

    A projection, not a measurement: it assumes the SD of the paired differences stays what it is here."""
    if frame.empty or frame.sd.isna().all():
        return ""
    rows = headline_rows(frame)
    sds = rows[rows.dataset == "mars"].sd.dropna()
    if sds.empty:
        return ""
    n_median = seeds_for_target(float(sds.median()), TARGET_MARS_MEDIAN)
    n_max = seeds_for_target(float(sds.max()), TARGET_MARS_MAX)
    n_mars = max(n_median, n_max)
    lines = [
        f"Projection from this study's SDs (not a measurement): on the MARS-like set the median SD "
        f"({sds.median():.2f}) reaches a half-width of {TARGET_MARS_MEDIAN:.1f} with {n_median} seeds and the largest "
        f"({sds.max():.2f}) reaches {TARGET_MARS_MAX:.1f} with {n_max}: `--seeds 0-{n_mars - 1}`, about "
        f"{n_mars * mars_minutes_per_seed:.0f} min of MARS-like training on this machine's 2 cores"
    ]
    small = rows[rows.dataset != "mars"]
    for r in small.itertuples():
        if math.isnan(r.sd):
            continue
        samples = seeds_for_target(float(r.sd), TARGET_SMALL)
        seeds = max(1, math.ceil(samples / splits))
        lines.append(
            f"{r.dataset}: SD {r.sd:.2f} over splits, {samples} paired samples for {TARGET_SMALL:.1f} Rank-1 points, "
            f"i.e. {seeds} seed(s) × {splits} splits (about {seeds * small_minutes_per_seed:.0f} min)"
        )
    return "; ".join(lines) + "."


def table_markdown(analysis: dict, metric: str) -> str:
    """One metric of a grl.bench.variance analysis as a Markdown table (SDs in points; paired rows with the
    half-widths 3, 5 and 10 seeds would give)."""
    lines = [
        f"| {metric}: what varies | common random numbers | SD (points) | over | training part | per-query part "
        f"| SD at {REAL_MARS_QUERIES} queries (projected) | 95 % half-width, 3 / 5 / 10 seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in analysis["metrics"][metric]:
        paired = r["kind"].startswith("paired")
        extra = (
            f"{r['sd_training']:.2f} | {r['sd_per_query']:.1f} (÷√{r['queries']}) | {r['sd_projected_real_size']:.2f}"
            if "sd_training" in r
            else " | | "
        )
        hw = " / ".join(f"{_half_width(r['sd'], n):.2f}" for n in (3, 5, 10)) if paired else ""
        lines.append(
            f"| {r['what']} ({r['kind']}) | {'yes' if r['crn'] else 'no'} | {r['sd']:.2f} | {r['n']} | {extra} | {hw} |"
        )
    return "\n".join(lines)


def _half_width(sd: float, n: int, confidence: float = 0.95) -> float:
    from scipy import stats

    return float(stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)) if n >= 2 else math.nan
