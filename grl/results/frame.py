"""The results frame: one row per (run, feature, metric) value, its CSV, the paper's numbers, per-cell samples."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import pandas as pd

from grl.experiments import Run, load_result
from grl.stats import (
    t_interval,
)

DATASET_NAMES = {"mars": "MARS", "ilidsvid": "iLIDS-VID", "prid2011": "PRID2011"}
METRIC_NAMES = {"mAP": "mAP", "rank1": "Rank-1", "rank5": "Rank-5", "rank10": "Rank-10", "rank20": "Rank-20"}
METRICS = tuple(METRIC_NAMES)


def paper_results() -> pd.DataFrame:
    """The paper's published numbers: columns table,row,dataset,feature,metric,value."""
    text = resources.files("grl").joinpath("paper_results.csv").read_text()
    return pd.read_csv(io.StringIO(text), keep_default_na=False, dtype={"feature": str})


# ---------------------------------------------------------------------------------------
# our numbers
RESULT_COLUMNS = ["profile", "data_version", "experiment", "dataset", "split", "seed", "feature", "metric", "value"]
CELL = ["experiment", "dataset", "feature", "metric"]  # what one table cell is (over seeds and splits)


def results_frame(runs: list[Run]) -> pd.DataFrame:
    """Long frame of our finished runs, one line per number: profile, data_version, experiment, dataset,
    split, seed, feature, metric, value. This is what ``results.csv`` holds (:func:`write_results_csv`)."""
    records = []
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        if result is None:
            continue
        for feature, metrics in result.get("metrics", {}).items():
            for metric in METRICS:
                if metric in metrics:
                    records.append(
                        {
                            "profile": run.profile,
                            "data_version": run.config.data_version,
                            "experiment": run.experiment,
                            "dataset": run.dataset,
                            "split": run.split,
                            "seed": run.config.seed,
                            "feature": feature,
                            "metric": metric,
                            "value": float(metrics[metric]),
                        }
                    )
    return pd.DataFrame(records, columns=RESULT_COLUMNS)


def cell_samples(ours: pd.DataFrame) -> dict[tuple, dict[tuple[int, int], float]]:
    """{cell: {(seed, split): value}}: the samples of every table cell, keyed for pairing."""
    ours = ours.assign(
        seed=ours["seed"] if "seed" in ours.columns else 0, split=ours["split"] if "split" in ours.columns else 0
    )
    samples: dict[tuple, dict] = {}
    for r in ours.itertuples():
        samples.setdefault((r.experiment, r.dataset, r.feature, r.metric), {})[(int(r.seed), int(r.split))] = r.value
    return samples


def cell_statistics(ours: pd.DataFrame) -> pd.DataFrame:
    """One line per table cell: the mean over its samples (seeds x splits) with its 95 % t-interval."""
    records = []
    for cell, values in cell_samples(ours).items():
        iv = t_interval(values.values())
        records.append({**dict(zip(CELL, cell)), "mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n})
    return pd.DataFrame(records, columns=[*CELL, "mean", "low", "high", "n"])


def calibration_check(ours: pd.DataFrame, dataset: str | None = None) -> list[dict]:
    """The Baseline (F^g) of a results frame against the built-in data's calibration targets (docs/study.md): per
    (dataset, metric) with a Baseline sample, its ``interval`` over seeds and splits, the ``values``, the target
    ``low``-``high`` and ``in_range`` (the mean inside the target)."""
    from grl.data.synthetic.sizes import CALIBRATION_TARGETS

    samples = cell_samples(ours)
    checks = []
    for (name, metric), (low, high) in CALIBRATION_TARGETS.items():
        values = samples.get(("baseline", name, "g", metric))
        if (dataset and name != dataset) or not values:
            continue
        iv = t_interval(values.values())
        checks.append(
            dict(dataset=name, metric=metric, interval=iv, values=list(values.values()), low=low, high=high,
                 in_range=low <= iv.mean <= high)
        )  # fmt: skip
    return checks


def metrics_table(result: dict, decimals: int = 1) -> pd.DataFrame:
    """One run's metrics, one line per test feature, rounded (deterministic text for nbval)."""
    order = {"g": 0, "l": 1, "h": 2, "h+l": 3}
    rows = {
        f: {METRIC_NAMES[m]: round(float(v[m]), decimals) for m in METRICS if m in v}
        for f, v in sorted(result.get("metrics", {}).items(), key=lambda kv: order.get(kv[0], 9))
    }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "feature"
    return frame


# ---------------------------------------------------------------------------------------
# "did I reproduce it?": this study against a reference table of per-seed results
def write_results_csv(path: str | Path, ours: pd.DataFrame) -> Path:
    """Every per-seed number of the study, machine-readable (atomic write)."""
    from grl.utils import atomic_write_bytes

    ordered = ours[RESULT_COLUMNS].sort_values(["experiment", "dataset", "split", "seed", "feature", "metric"])
    atomic_write_bytes(path, ordered.to_csv(index=False, float_format="%.6f").encode())
    return Path(path)


def read_results_csv(source) -> pd.DataFrame:
    """A ``results.csv`` (a path or an open text), checked for the columns it must have."""
    frame = pd.read_csv(source, keep_default_na=False, dtype={"data_version": str, "feature": str})
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: not a results table of this project: missing columns {missing} "
            f"(expected {', '.join(RESULT_COLUMNS)})"
        )
    frame["value"] = frame["value"].astype(float)
    return frame
