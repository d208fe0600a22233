"""The overview of every comparison of Tables 2-6: our paired difference with its interval, the per-seed and
per-split differences it rests on, and the paper's difference, on one axis per metric with 0 marked."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

VERDICT_COLOURS = {"agrees": "#2ca02c", "contradicts": "#d62728", "inconclusive": "#7f7f7f"}
_NEEDED = {"table", "row", "vs", "dataset", "metric", "paper_delta", "ours_delta", "low", "high", "verdict"}
_DATASETS = {"mars": "MARS", "ilidsvid": "iLIDS-VID", "prid2011": "PRID2011"}
_METRICS = {"mAP": "mAP", "rank1": "Rank-1"}


def _checked(comparisons, caller: str):
    missing = sorted(_NEEDED - set(comparisons.columns))
    if missing:
        raise ValueError(f"{caller}: missing column(s) {missing}; pass grl.results.comparisons(...)")
    return comparisons.reset_index(drop=True)


def _line_label(r) -> str:
    return _superscripts(f"T{r.table} {_DATASETS.get(r.dataset, r.dataset)}: {r.row}  vs  {r.vs}")


def _superscripts(text: str) -> str:
    """ "F^g" as F with a superscript g (matplotlib's mathtext), never a printed caret."""
    return re.sub(r"\^(\w)", r"$^{\1}$", text)


def _draw(ax, data, y: np.ndarray, labels: list[str]) -> None:
    """One metric's comparisons on ``ax``: line ``y[i]`` holds comparison ``i`` (labels: every line's name, so
    seaborn's strip plot puts each comparison's per-sample points on its own line)."""
    import pandas as pd
    import seaborn as sns

    if "differences" in data:
        points = pd.DataFrame(
            [(labels[yi], d) for yi, ds in zip(y, data.differences) for d in (ds or ())], columns=["line", "d"]
        )
        if not points.empty:
            sns.stripplot(
                data=points, x="d", y="line", order=labels, color="#9e9e9e", size=2.5, jitter=0.15, alpha=0.8, ax=ax
            )
    colours = [VERDICT_COLOURS.get(v, "#7f7f7f") for v in data.verdict]
    low = (data.ours_delta - data.low).clip(lower=0).fillna(0)
    high = (data.high - data.ours_delta).clip(lower=0).fillna(0)
    for yi, mean, lo, hi, colour in zip(y, data.ours_delta, low, high, colours):
        ax.errorbar(mean, yi, xerr=[[lo], [hi]], fmt="o", color=colour, ms=4, capsize=2, lw=1.2, zorder=3)
    ax.scatter(data.paper_delta, y, marker="x", color="black", s=22, zorder=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.3, -0.7)
    ax.set_ylabel("")
    ax.grid(axis="x", alpha=0.3)


def _legend(ax) -> None:
    handles = [
        Line2D([], [], color=c, marker="o", ls="-", label=f"ours, {v} (95 % interval)")
        for v, c in VERDICT_COLOURS.items()
    ]
    handles.append(Line2D([], [], color="#9e9e9e", marker="o", ls="", ms=3, label="ours, one seed / split"))
    handles.append(Line2D([], [], color="black", marker="x", ls="", label="paper"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def plot_ablation_differences(
    comparisons: "pandas.DataFrame",  # noqa: F821
    metric: str = "mAP",
    title: str | None = None,
) -> Figure:
    """One metric's comparisons (rows of ``grl.results.comparisons``): our paired difference to the reference row
    with its 95 % interval (a dot and a bar, coloured by the verdict), the per-seed (and per-split) paired
    differences it rests on (small grey points, seaborn's strip plot) and the paper's difference (a black cross),
    on one shared axis with 0 marked, so agreement in sign is visible at a glance. One line per comparison; the
    legend sits outside the axes."""
    data = _checked(comparisons, "plot_ablation_differences")
    data = data[data.metric == metric].reset_index(drop=True)
    if data.empty:
        raise ValueError(f"plot_ablation_differences: no comparison of metric {metric!r}")
    labels = [_line_label(r) + (f"  (n={r.n})" if "n" in data else "") for r in data.itertuples()]
    height = 0.32 * len(data) + 1.4
    fig = plt.figure(figsize=(11, height))
    ax = fig.add_axes((0.42, 0.9 / height, 0.40, 1 - 1.2 / height))
    _draw(ax, data, np.arange(len(data)), labels)
    ax.set_xlabel(f"difference to the reference row, {metric} (percentage points)", fontsize=8)
    _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_comparisons_overview(
    comparisons: "pandas.DataFrame",  # noqa: F821
    title: str | None = None,
) -> Figure:
    """Every comparison of Tables 2-6 in one figure: one line per comparison (table, dataset, row against its
    reference row), one panel per metric (mAP, Rank-1; a line is empty in a panel where the paper reports no such
    number), each drawn as :func:`plot_ablation_differences` draws it. n on a line: the paired samples (seeds, or
    seeds × splits) behind its Rank-1 interval."""
    data = _checked(comparisons, "plot_comparisons_overview")
    if data.empty:
        raise ValueError("plot_comparisons_overview: no comparison to draw")
    metrics = [m for m in ("mAP", "rank1") if (data.metric == m).any()]
    keys = list(dict.fromkeys(zip(data.table, data.dataset, data.row, data.vs)))
    line = {k: i for i, k in enumerate(keys)}
    n = data.groupby(["table", "dataset", "row", "vs"], sort=False).n.max() if "n" in data else None
    labels = [
        _superscripts(f"T{t} {_DATASETS.get(d, d)}: {row}  vs  {vs}")
        + (f"  (n={int(n[(t, d, row, vs)])})" if n is not None else "")
        for t, d, row, vs in keys
    ]
    height = 0.30 * len(keys) + 1.6
    fig, axes = plt.subplots(1, len(metrics), figsize=(13, height), sharey=True, squeeze=False)
    axes = axes[0]
    left, width = 0.40, (0.78 - 0.40) / len(metrics)
    for i, (ax, metric) in enumerate(zip(axes, metrics)):
        ax.set_position((left + i * (width + 0.01), 1.0 / height, width - 0.01, 1 - 1.8 / height))
        part = data[data.metric == metric].reset_index(drop=True)
        y = np.array([line[k] for k in zip(part.table, part.dataset, part.row, part.vs)])
        _draw(ax, part, y, labels)
        ax.set_xlabel(f"{_METRICS.get(metric, metric)}: difference to the reference row (points)", fontsize=8)
        ax.set_title(_METRICS.get(metric, metric), fontsize=9)
        if i:
            ax.tick_params(axis="y", left=False)
    _legend(axes[-1])
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.2 / height, va="top")
    return fig
