"""The comparisons of Tables 2-6 (paired by seed and split) and their verdicts: Holm's adjustment, detectable effects, equivalence margins; the GRL-vs-Baseline headline."""

from __future__ import annotations

import pandas as pd

from grl.catalogue import CATALOGUE
from grl.results.frame import DATASET_NAMES, METRIC_NAMES, cell_samples, paper_results
from grl.stats import (
    VERDICTS,
    Interval,
    adjusted_verdict,
    holm,
    paired_test,
    t_interval,
    verdict,
    within_margin,
)

# ---------------------------------------------------------------------------------------
# comparisons between rows: paired differences and verdicts
COMPARISON_COLUMNS = [
    "table",
    "row",
    "vs",
    "dataset",
    "metric",
    "paper_delta",
    "ours_delta",
    "low",
    "high",
    "n",
    "verdict",
    "sd",
    "mde",
    "p",
    "p_holm",
    "verdict_holm",
    "margin",
    "within_margin",
    "differences",  # the paired per-sample differences the interval rests on (seed and split order)
]

# "No effect larger than δ" (points of mAP or Rank-1), written down on 2026-12-04 before the study of that day
# was run: on the MARS-like set the paper's TRL effects are 0.6-2.2 points, so 1 point is the smallest effect
# worth telling apart from none; on the small sets, with one identity worth 0.7-1.1 Rank-1 points, 2 points.
EQUIVALENCE_MARGIN = {"mars": 1.0, "ilidsvid": 2.0, "prid2011": 2.0}


def reference_row(table: int) -> str:
    """The row every other row of a table is compared with: the Baseline in Table 2 (the paper adds
    its components to the Baseline), the full GRL row in Tables 3-6."""
    experiment, feature = ("baseline", "g") if table == 2 else ("grl", "h+l")
    return next(r.row for r in CATALOGUE if r.table == table and r.experiment == experiment and r.feature == feature)


def comparisons(ours: pd.DataFrame, paper: pd.DataFrame | None = None, metrics=("mAP", "rank1")) -> pd.DataFrame:
    """Every row of Tables 2-6 against its :func:`reference_row`, per dataset and metric the paper prints:
    the paper's difference, our paired per-sample difference (same seed and split) with its 95 %
    interval, and the verdict (:func:`grl.stats.verdict`). Rows without samples of ours are left out."""
    paper = paper_results() if paper is None else paper
    printed = {(int(p.table), p.row, p.dataset, p.metric): float(p.value) for p in paper.itertuples()}
    samples = cell_samples(ours)
    records = []
    for table in (2, 3, 4, 5, 6):
        ref_name = reference_row(table)
        rows = [r for r in CATALOGUE if r.table == table]
        ref = {r.dataset: r for r in rows if r.row == ref_name}
        for r in rows:
            base = ref.get(r.dataset)
            if r.row == ref_name or base is None:
                continue
            for metric in metrics:
                p_row, p_ref = (
                    printed.get((table, r.row, r.dataset, metric)),
                    printed.get((table, base.row, r.dataset, metric)),
                )
                mine = samples.get((r.experiment, r.dataset, r.feature, metric))
                theirs = samples.get((base.experiment, base.dataset, base.feature, metric))
                if p_row is None or p_ref is None or not mine or not theirs:
                    continue
                test = paired_test(mine, theirs)
                diff = test.interval
                if diff.n == 0:
                    continue
                margin = EQUIVALENCE_MARGIN[r.dataset]
                records.append(
                    {
                        "table": table,
                        "row": r.row,
                        "vs": base.row,
                        "dataset": r.dataset,
                        "metric": metric,
                        "paper_delta": round(p_row - p_ref, 2),
                        "ours_delta": diff.mean,
                        "low": diff.low,
                        "high": diff.high,
                        "n": diff.n,
                        "verdict": verdict(diff, p_row - p_ref),
                        "sd": test.sd,
                        "mde": test.mde,
                        "p": test.p_value,
                        "margin": margin,
                        "within_margin": within_margin(diff, margin),
                        "differences": tuple(mine[k] - theirs[k] for k in sorted(set(mine) & set(theirs))),
                    }
                )
    frame = pd.DataFrame(records, columns=COMPARISON_COLUMNS)
    # Holm over every comparison of the study (the family the summary counts are drawn from).
    frame["p_holm"] = holm(frame.p) if len(frame) else []
    frame["verdict_holm"] = [
        adjusted_verdict(Interval(r.ours_delta, r.low, r.high, r.n), r.paper_delta, r.p_holm)
        for r in frame.itertuples()
    ]
    return frame


def verdict_counts(frame: pd.DataFrame, column: str = "verdict") -> dict[str, int]:
    return {v: int((frame[column] == v).sum()) if len(frame) else 0 for v in VERDICTS}


def verdict_summary(frame: pd.DataFrame) -> str:
    """One line per table and one in all: how many comparisons agree with the paper, contradict it,
    or are inconclusive (the 95 % interval of the paired difference contains 0)."""
    if frame.empty:
        return "No row can be compared with its reference row yet (missing runs)."

    def counts(part, column="verdict_holm") -> str:
        c = verdict_counts(part, column)
        within = int((part.within_margin & (part[column] == "inconclusive")).sum())
        return (
            f"{c['agrees']} agree, {c['contradicts']} contradict, {c['inconclusive']} inconclusive"
            f" ({within} of them with no effect larger than δ)"
        )

    lines = [
        f"Table {t} (vs {reference_row(t)}): {counts(part)} of {len(part)}."
        for t, part in frame.groupby("table", sort=True)
    ]
    n_low, n_high = int(frame.n.min()), int(frame.n.max())
    n = f"{n_low}" if n_low == n_high else f"{n_low}-{n_high}"
    raw = verdict_counts(frame)
    lines.append(
        f"In all, of {len(frame)} comparisons, after Holm's adjustment over all {len(frame)}: {counts(frame)}; "
        f"before it: {raw['agrees']} agree, {raw['contradicts']} contradict, {raw['inconclusive']} inconclusive "
        f"(paired 95 % intervals over {n} sample{'s' if n_high != 1 else ''} each"
        f"{'; one sample cannot give an interval, so every verdict is inconclusive' if n_high < 2 else ''}). "
        f"δ = {', '.join(f'{v:g} ({DATASET_NAMES[d]})' for d, v in EQUIVALENCE_MARGIN.items())} points. "
        f"Median minimum detectable effect (80 % power): {frame.mde.median():.1f} points."
    )
    return "\n".join(lines)


def grl_vs_baseline(ours: pd.DataFrame) -> str:
    """A plain answer, computed from the numbers: does GRL (F^l+F^h) beat the Baseline (F^g)?

    Per dataset and metric (mAP, Rank-1), the paired per-sample difference GRL - Baseline with its
    95 % interval: "better" / "worse" where the interval excludes 0, "no conclusion" where it does not.
    """
    samples = cell_samples(ours)
    family = comparisons(ours)  # Holm's adjustment runs over the whole study's comparisons
    lines = []
    for ds, name in DATASET_NAMES.items():
        parts = []
        for m in ("mAP", "rank1"):
            grl, base = samples.get(("grl", ds, "h+l", m)), samples.get(("baseline", ds, "g", m))
            if not grl or not base:
                continue
            test = paired_test(grl, base)
            diff = test.interval
            if diff.n == 0:
                continue
            word = ("better" if diff.low > 0 else "worse") if diff.excludes_zero() else "no conclusion"
            spread = f"[{diff.low:+.1f}, {diff.high:+.1f}]" if diff.n > 1 else "no interval from one sample"
            row = (
                family[
                    (family.table == 2)
                    & (family.row == "+TRL (F^l+F^h)")
                    & (family.dataset == ds)
                    & (family.metric == m)
                ]
                if len(family)
                else family
            )
            adjusted = ""
            if len(row) and diff.n > 1:
                r = row.iloc[0]
                held = r.verdict_holm != "inconclusive"
                adjusted = (
                    f", after Holm: {word if held else 'no conclusion'}"
                    f"{'; no effect larger than ' + format(r.margin, 'g') if r.within_margin else ''}"
                    f"; smallest effect detectable with 80 % power: {test.mde:.1f}"
                )
            parts.append(
                f"{METRIC_NAMES[m]} {t_interval(grl.values()).mean:.1f} vs {t_interval(base.values()).mean:.1f}, "
                f"difference {diff.mean:+.1f} {spread} over {diff.n} samples: **{word}**{adjusted}"
            )
        if parts:
            lines.append(f"- {name}: " + "; ".join(parts))
    if not lines:
        return "No dataset has both a finished GRL run and a finished Baseline run yet, so whether GRL beats the Baseline cannot be said."
    return (
        "GRL (F^l+F^h) against the Baseline (F^g), paired by seed and split, with the 95 % interval "
        "of the mean difference; a conclusion only where the interval excludes 0:\n" + "\n".join(lines)
    )


def headline_verdicts(frame: pd.DataFrame) -> str:
    """GRL (F^l+F^h) vs the Baseline per dataset and metric, after Holm: "MARS mAP better, ..."."""
    rows = frame[(frame.table == 2) & (frame.row == "+TRL (F^l+F^h)")] if len(frame) else frame
    words = {"agrees": "better", "contradicts": "worse", "inconclusive": "no conclusion"}
    return (
        ", ".join(
            f"{DATASET_NAMES[r.dataset]} {METRIC_NAMES[r.metric]} {words[r.verdict_holm]}"
            for r in rows.sort_values(["dataset", "metric"]).itertuples()
        )
        or "none"
    )
