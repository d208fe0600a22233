"""Training curves: one panel per loss term of one run, or every seed's curves as a mean and band per arm."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure

from grl.viz.images import figure_grid, finish


def read_run_metrics(run_dir: str | Path) -> "pandas.DataFrame":  # noqa: F821
    """metrics.jsonl of a run as a frame (one line per logged epoch; nested dicts flattened with '.');
    empty if absent. A line that is not JSON (e.g. half-written when a machine died) is skipped with a
    warning naming the file and line: one bad line never stops a report."""
    import json
    import sys

    import pandas as pd

    from grl import run_folder

    path = run_folder.metrics(run_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return pd.DataFrame()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"warning: {path} cannot be read ({exc}); its training curve is left out", file=sys.stderr)
        return pd.DataFrame()
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            print(f"warning: {path} line {number} is not a JSON record; skipped", file=sys.stderr)
            continue
        records.append(record)
    return pd.json_normalize(records) if records else pd.DataFrame()


def read_metrics(paths: Iterable[str | Path]) -> "pandas.DataFrame":  # noqa: F821
    """metrics.jsonl files (or their run folders) -> one DataFrame with a 'run' column naming the run folder."""
    import pandas as pd

    frames = []
    for p in paths:
        p = Path(p)
        run_dir = p if p.is_dir() else p.parent
        df = read_run_metrics(run_dir)
        df.insert(0, "run", run_dir.name)
        frames.append(df)
    if not frames:
        raise ValueError("read_metrics: no metrics files given")
    return pd.concat(frames, ignore_index=True)


def curve_keys(df, exclude: set) -> list[str]:
    """The columns worth a training-curve panel: each loss term, the learning rate and the headline
    retrieval numbers -- but no column that is constant, has fewer than two points, or repeats another
    (the Baseline's total loss *is* its one term), and no timings ("*_s") or counters."""
    import pandas as pd

    numeric = [
        c
        for c in df.columns
        if c not in exclude
        and c not in {"epoch", "step", "steps"}
        and not c.endswith("_s")
        and pd.api.types.is_numeric_dtype(df[c])
    ]
    informative = [c for c in numeric if df[c].notna().sum() >= 2 and df[c].dropna().nunique() > 1]
    headline = [
        c for c in informative if c.startswith("loss") or c.startswith("lr") or c.split(".")[-1] in ("mAP", "rank1")
    ] or informative
    keys: list[str] = []
    for c in headline:  # a column repeating another is left out (the named term is kept, not the total)
        if c != "loss" and not any(df[c].equals(df[k]) for k in keys):
            keys.append(c)
    terms = [k for k in keys if k.startswith("loss_")]
    total_is_a_term = len(terms) == 1 and "loss" in df and np.allclose(df["loss"].dropna(), df[terms[0]].dropna())
    if "loss" in headline and not total_is_a_term and not any(df["loss"].equals(df[k]) for k in keys):
        keys.insert(0, "loss")
    return keys


def _axis_label(key: str) -> str:
    if key.startswith("loss"):
        return "loss"
    if key.startswith("lr"):
        return "learning rate"
    if key.split(".")[-1] in ("mAP", "rank1"):
        return "%"
    return key


def plot_training_curves(
    metrics: Any,
    keys: Sequence[str] | None = None,
    x: str | None = None,
    title: str | None = None,
    run_col: str = "run",
) -> Figure:
    """One panel per curve (:func:`curve_keys`: each loss term, lr, mAP / Rank-1 of the periodic
    evaluations) against ``x`` (default "epoch", else "step", else the row number); one line per run.
    ``metrics``: a DataFrame, or metrics.jsonl paths / run folders."""
    import pandas as pd

    if isinstance(metrics, (str, Path)):
        metrics = [metrics]
    df = metrics if isinstance(metrics, pd.DataFrame) else read_metrics(metrics)
    df = df.copy()
    if x is None:
        x = next((c for c in ("epoch", "step") if c in df.columns), None)
    if x is None:
        x = "row"
        df[x] = np.arange(len(df))
    if keys is None:
        keys = curve_keys(df, exclude={x, run_col})
    if not keys:
        raise ValueError(f"plot_training_curves: no curve with two or more distinct points in {list(df.columns)}")
    n = len(keys)
    cols = min(n, 4)
    nrows = (n + cols - 1) // cols
    fig, axes = figure_grid(nrows, cols, figsize=(3.3 * cols, 2.6 * nrows), pad=0.08)
    groups = df.groupby(run_col, sort=False) if run_col in df.columns else [("", df)]
    for ax, key in zip(axes.flat, keys):
        for name, g in groups:
            g = g[[x, key]].dropna()
            ax.plot(g[x], g[key], marker="o" if len(g) < 20 else None, ms=3, label=str(name) or None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel(_axis_label(key), fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if run_col in df.columns and df[run_col].nunique() > 1:
        axes.flat[0].legend(
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.25 if nrows == 1 else -0.35),
            ncol=min(4, df[run_col].nunique()),
            frameon=False,
        )
    finish(fig, title)
    return fig


# Facet titles of the learning curves: each loss term by its equation, and the test set's numbers.
QUANTITY_NAMES = {
    "loss": "total loss (eq. 14)",
    "loss_frame_oim": "frame-level OIM (eq. 12)",
    "loss_video_oim": "video-level OIM (eq. 13)",
    "loss_verification": "verification (eq. 11)",
    "loss_pooled_oim": "OIM on the pooled F^h (release)",
    "loss_triplet": "triplet (release)",
    "mAP": "test mAP, main feature (%)",
    "rank1": "test Rank-1, main feature (%)",
}


def learning_curves_frame(runs: Iterable[tuple[str, int, str | Path, str]]) -> "pandas.DataFrame":  # noqa: F821
    """(arm, seed, run folder, main test feature) per run -> one row per (arm, seed, step, quantity, value): every
    loss term of every epoch and the main feature's mAP / Rank-1 of every evaluation."""
    import pandas as pd

    rows = []
    for arm, seed, run_dir, feature in runs:
        df = read_run_metrics(run_dir)
        if df.empty:
            continue
        steps = df["epoch"] * df["steps"] if "steps" in df else df["epoch"]
        for column in df.columns:
            quantity = column if column.startswith("loss") else None
            if column in (f"eval.{feature}.mAP", f"eval.{feature}.rank1"):
                quantity = column.rsplit(".", 1)[1]
            if quantity is None:
                continue
            for step, value in zip(steps, df[column]):
                if value == value:  # not NaN: epochs without an evaluation
                    rows.append({"arm": arm, "seed": seed, "step": int(step), "quantity": quantity, "value": value})
    return pd.DataFrame(rows, columns=["arm", "seed", "step", "quantity", "value"])


def plot_learning_curves(long: "pandas.DataFrame", title: str | None = None) -> Figure:  # noqa: F821
    """One facet per quantity of :func:`learning_curves_frame` that has at least two evaluated steps (a lone point
    is no curve), each arm's mean over its seeds with a band of ±1 SD, against training steps (seaborn)."""
    import seaborn as sns

    order = [q for q in QUANTITY_NAMES if q in set(long["quantity"])]
    order += sorted(set(long["quantity"]) - set(order))
    order = [q for q in order if long.loc[long["quantity"] == q, "step"].nunique() >= 2]
    if not order:
        raise ValueError("plot_learning_curves: no quantity with two or more evaluated steps")
    data = long[long["quantity"].isin(order)].assign(
        quantity=lambda d: d["quantity"].map(lambda q: QUANTITY_NAMES.get(q, q))
    )
    grid = sns.relplot(
        data=data,
        kind="line",
        x="step",
        y="value",
        hue="arm",
        col="quantity",
        col_order=[QUANTITY_NAMES.get(q, q) for q in order],
        col_wrap=min(3, len(order)),
        errorbar="sd",
        height=2.5,
        aspect=1.35,
        facet_kws={"sharey": False},
    )
    grid.set_titles("{col_name}", size=9)
    grid.set_axis_labels("training step", "")
    sns.move_legend(grid, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=data["arm"].nunique(), title=None)
    if title:
        grid.figure.suptitle(title, fontsize=10, y=1.08)
    return grid.figure
