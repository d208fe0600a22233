"""Finished runs -> the paper's Tables 1-6 with, for every cell, the paper's number, ours and the difference.

Everything here is plain data work on pandas frames, so it is tested with fake results;
``notebooks/report.ipynb`` only calls these functions and displays what they return.
"""
from __future__ import annotations

import io
import json
import subprocess
from importlib import resources
from pathlib import Path

import pandas as pd

from grl.experiments import CATALOGUE, PROFILES, TABLE_TITLES, TABLES, Run, load_result

DATASET_NAMES = {"mars": "MARS", "ilidsvid": "iLIDS-VID", "prid2011": "PRID2011"}
METRIC_NAMES = {"mAP": "mAP", "rank1": "Rank-1", "rank5": "Rank-5", "rank10": "Rank-10", "rank20": "Rank-20"}
METRICS = tuple(METRIC_NAMES)


def paper_results() -> pd.DataFrame:
    """The paper's published numbers: columns table,row,dataset,feature,metric,value."""
    text = resources.files("grl").joinpath("paper_results.csv").read_text()
    return pd.read_csv(io.StringIO(text), keep_default_na=False, dtype={"feature": str})


# ---------------------------------------------------------------------------------------
# our numbers
def results_frame(runs: list[Run]) -> pd.DataFrame:
    """Long frame of our finished runs: experiment,dataset,split,feature,metric,value (one row per number)."""
    records = []
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        if result is None:
            continue
        for feature, metrics in result.get("metrics", {}).items():
            for metric in METRICS:
                if metric in metrics:
                    records.append({"experiment": run.experiment, "dataset": run.dataset, "split": run.split,
                                    "feature": feature, "metric": metric, "value": float(metrics[metric])})
    return pd.DataFrame(records, columns=["experiment", "dataset", "split", "feature", "metric", "value"])


def average_splits(ours: pd.DataFrame) -> pd.DataFrame:
    """Mean over splits (iLIDS-VID / PRID2011 report the average of their 10 splits), with the split count."""
    if ours.empty:
        return pd.DataFrame(columns=["experiment", "dataset", "feature", "metric", "value", "num_splits"])
    grouped = ours.groupby(["experiment", "dataset", "feature", "metric"], sort=False)["value"]
    return grouped.agg(value="mean", num_splits="count").reset_index()


def metrics_table(result: dict, decimals: int = 1) -> pd.DataFrame:
    """One run's metrics, one line per test feature, rounded (deterministic text for nbval)."""
    order = {"g": 0, "l": 1, "h": 2, "h+l": 3}
    rows = {f: {METRIC_NAMES[m]: round(float(v[m]), decimals) for m in METRICS if m in v}
            for f, v in sorted(result.get("metrics", {}).items(), key=lambda kv: order.get(kv[0], 9))}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "feature"
    return frame


# ---------------------------------------------------------------------------------------
# tables
def assemble_tables(ours: pd.DataFrame, paper: pd.DataFrame | None = None) -> dict[int, pd.DataFrame]:
    """One long frame per table: row, dataset, feature, metric, paper, ours, diff (ours - paper).

    ``ours`` is :func:`results_frame` output (split-averaged here if it has a split column).
    The metrics of a table are those the paper prints; a missing run leaves ``ours`` NaN.
    """
    paper = paper_results() if paper is None else paper
    if "split" in ours.columns:
        ours = average_splits(ours)
    lookup = {(r.experiment, r.dataset, r.feature, r.metric): r.value for r in ours.itertuples()}
    tables = {}
    for table in TABLES:
        records = []
        for row in (r for r in CATALOGUE if r.table == table):
            printed = paper[(paper.table == table) & (paper.row == row.row) & (paper.dataset == row.dataset)]
            for p in printed.itertuples():
                value = lookup.get((row.experiment, row.dataset, row.feature, p.metric), float("nan"))
                records.append({"row": row.row, "dataset": row.dataset, "feature": row.feature, "metric": p.metric,
                                "paper": float(p.value), "ours": value, "diff": value - float(p.value)})
        tables[table] = pd.DataFrame(records, columns=["row", "dataset", "feature", "metric", "paper", "ours", "diff"])
    return tables


def wide_table(table: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Display form: one line per row label, one column per dataset+metric, cells "ours / paper (diff)"."""
    def cell(r) -> str:
        if pd.isna(r.ours):
            return f"— / {r.paper:.{decimals}f}"
        return f"{r.ours:.{decimals}f} / {r.paper:.{decimals}f} ({r.diff:+.{decimals}f})"

    frame = table.assign(
        column=[f"{DATASET_NAMES[d]} {METRIC_NAMES[m]}" for d, m in zip(table.dataset, table.metric)],
        cell=[cell(r) for r in table.itertuples()],
    )
    wide = frame.pivot(index="row", columns="column", values="cell")
    wide = wide.reindex(index=list(dict.fromkeys(frame.row)), columns=list(dict.fromkeys(frame.column)))
    wide.index.name = None
    wide.columns.name = None
    return wide.fillna("")


def table_markdown(table_no: int, table: pd.DataFrame, decimals: int = 1) -> str:
    """One table as Markdown, titled; cells read "ours / paper (ours - paper)"."""
    body = wide_table(table, decimals).to_markdown() if len(table) else "(no rows)"
    return f"**{TABLE_TITLES[table_no]}** — cells: ours / paper (difference)\n\n{body}\n"


def tables_markdown(tables: dict[int, pd.DataFrame], decimals: int = 1) -> str:
    return "\n".join(table_markdown(t, tables[t], decimals) for t in sorted(tables))


# ---------------------------------------------------------------------------------------
# the headline question
def grl_vs_baseline(ours: pd.DataFrame) -> str:
    """A plain sentence, computed from the numbers: does GRL (F^l+F^h) beat the Baseline (F^g)?

    Per dataset, "beats" means higher mAP *and* higher Rank-1; lower or equal on both is
    "does not beat"; anything else is "mixed".
    """
    if "split" in ours.columns:
        ours = average_splits(ours)
    value = {(r.experiment, r.dataset, r.feature, r.metric): r.value for r in ours.itertuples()}
    verdicts: dict[str, list[str]] = {"beats": [], "does not beat": [], "mixed": []}
    for ds, name in DATASET_NAMES.items():
        pairs = [(m, value.get(("grl", ds, "h+l", m)), value.get(("baseline", ds, "g", m))) for m in ("mAP", "rank1")]
        if any(g is None or b is None for _, g, b in pairs):
            continue
        detail = ", ".join(f"{METRIC_NAMES[m]} {g:.1f} vs {b:.1f}" for m, g, b in pairs)
        wins = [g > b for _, g, b in pairs]
        kind = "beats" if all(wins) else "does not beat" if not any(wins) else "mixed"
        verdicts[kind].append(f"{name} ({detail})")
    if not any(verdicts.values()):
        return "No dataset has both a finished GRL run and a finished Baseline run yet, so whether GRL beats the Baseline cannot be said."
    parts = []
    if verdicts["beats"]:
        parts.append(f"On our data GRL beats the Baseline on {'; '.join(verdicts['beats'])}.")
    if verdicts["does not beat"]:
        parts.append(f"On our data GRL does NOT beat the Baseline on {'; '.join(verdicts['does not beat'])}: "
                     "the paper's central claim is not reproduced there.")
    if verdicts["mixed"]:
        parts.append(f"Against the Baseline GRL is mixed (better on one of mAP/Rank-1, not both) on "
                     f"{'; '.join(verdicts['mixed'])}.")
    return " ".join(parts)


def trend_agreement(tables: dict[int, pd.DataFrame], metrics=("mAP", "rank1")) -> pd.DataFrame:
    """Does each ablation move the numbers the way the paper's does? One line per comparison.

    For Tables 2-6 every row is compared with the table's GRL-full row (experiment ``grl``
    tested with F^l+F^h): ``paper_delta`` = paper(row) − paper(GRL), ``ours_delta`` likewise,
    ``agrees`` = both deltas have the same sign (a tie counts as agreeing only with a tie).
    Rows without our number are left out. Absolute gaps to the paper say little on synthetic
    data; these signs are what a CPU reproduction can confirm or refute.
    """
    records = []
    for table in (2, 3, 4, 5, 6):
        frame = tables.get(table)
        reference = next((r.row for r in CATALOGUE if r.table == table and r.experiment == "grl" and r.feature == "h+l"), None)
        if frame is None or frame.empty or reference is None:
            continue
        frame = frame[frame.metric.isin(metrics)]
        ref = {(r.dataset, r.metric): r for r in frame[frame.row == reference].itertuples()}
        for r in frame[frame.row != reference].itertuples():
            base = ref.get((r.dataset, r.metric))
            if base is None or pd.isna(r.ours) or pd.isna(base.ours):
                continue
            paper_delta, ours_delta = r.paper - base.paper, r.ours - base.ours
            sign = lambda x: (x > 0) - (x < 0)  # noqa: E731
            records.append({"table": table, "row": r.row, "vs": reference, "dataset": r.dataset, "metric": r.metric,
                            "paper_delta": round(paper_delta, 2), "ours_delta": round(ours_delta, 2),
                            "agrees": sign(paper_delta) == sign(ours_delta)})
    return pd.DataFrame(records, columns=["table", "row", "vs", "dataset", "metric", "paper_delta", "ours_delta",
                                          "agrees"])


def trend_summary(agreement: pd.DataFrame) -> str:
    """One sentence per table: how many of its comparisons with GRL go the paper's way."""
    if agreement.empty:
        return "No ablation can be compared with GRL yet (missing runs)."
    lines = []
    for table, part in agreement.groupby("table", sort=True):
        lines.append(f"Table {table}: {int(part.agrees.sum())} of {len(part)} comparisons with GRL "
                     f"({', '.join(sorted(set(METRIC_NAMES[m] for m in part.metric)))}) go the paper's way.")
    total = int(agreement.agrees.sum())
    lines.append(f"In all: {total} of {len(agreement)} ({100 * total / len(agreement):.0f}%); "
                 "50% is what coin flips would give.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# provenance
def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One line per run: name, status, epochs, wall time, device, seed, data root, commit."""
    records = []
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        records.append({
            "run": run.name, "experiment": run.experiment, "dataset": run.dataset, "split": run.split,
            "status": "done" if result else ("stale" if load_result(run.run_dir) else "missing"),
            "epochs": result.get("epochs_done") if result else None,
            "wall_time_s": round(float(result.get("wall_time_s", 0.0)), 1) if result else None,
            "device": result.get("device") if result else None,
            "seed": run.config.seed, "data_root": _data_label(run),
            "commit": result.get("commit") if result else None,
        })
    return pd.DataFrame(records)


def _data_label(run: Run) -> str:
    root = run.config.data_root
    if not root:
        return "(built-in synthetic)"
    if root == PROFILES[run.profile].synthetic_root(run.dataset):
        return "(built-in synthetic, reduced sizes)"
    return root


def current_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(profile: str, runs: list[Run]) -> str:
    """Markdown bullet list: profile, data, seeds, commits, devices, wall times, MARS gallery convention."""
    frame = runs_frame(runs)
    done = frame[frame.status == "done"] if len(frame) else frame
    prof = PROFILES[profile]
    roots = sorted(set(frame.data_root)) if len(frame) else []
    mars = [r for r in runs if r.dataset == "mars"]
    if mars:
        gallery = ("gallery **includes** the query tracklets (the authors' release convention)"
                   if mars[0].config.mars_gallery_includes_queries else
                   "gallery **excludes** the query tracklets (queries without a cross-camera match are skipped)")
    else:
        gallery = "no MARS run selected"

    def listed(column: str) -> str:
        values = sorted({str(v) for v in done[column].dropna()}) if len(done) else []
        return ", ".join(values) or "—"

    wall = float(done.wall_time_s.sum()) if len(done) else 0.0
    lines = [
        f"- **Profile**: `{profile}` — {prof.description}",
        f"- **Data**: {', '.join(roots) or '—'}",
        f"- **Seeds**: {', '.join(str(s) for s in sorted(set(frame.seed))) if len(frame) else '—'}",
        f"- **Runs**: {len(done)} of {len(frame)} done",
        f"- **Commit** (of the runs): {listed('commit')}; report built at {current_commit()}",
        f"- **Device**: {listed('device')}",
        f"- **Training + evaluation wall time**: {wall / 60:.1f} min in total",
        f"- **MARS gallery convention**: {gallery}",
        "- **Test distance**: cosine; iLIDS-VID / PRID2011 numbers are averaged over the profile's splits",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# the Markdown report
def report_markdown(profile: str, runs: list[Run]) -> str:
    ours = results_frame(runs)
    tables = assemble_tables(ours)
    return "\n\n".join([
        f"# GRL reproduction report — profile `{profile}`",
        provenance(profile, runs),
        "## Does GRL beat the Baseline?\n\n" + grl_vs_baseline(ours),
        "## Do the ablations go the paper's way?\n\n" + trend_summary(trend_agreement(tables)).replace("\n", "\n\n"),
        "## Tables 1-6: ours vs the paper\n\n" + tables_markdown(tables),
    ]) + "\n"


# ---------------------------------------------------------------------------------------
# plots (seaborn; kept here so the notebook stays thin)
def ablation_frame(tables: dict[int, pd.DataFrame], metrics=("mAP", "rank1")) -> pd.DataFrame:
    """MARS rows of Tables 3-6 in long form for plotting: table, row, metric, source (paper/ours), value."""
    parts = []
    for t in (3, 4, 5, 6):
        frame = tables.get(t)
        if frame is None or frame.empty:
            continue
        frame = frame[(frame.dataset == "mars") & frame.metric.isin(metrics)]
        long = frame.melt(id_vars=["row", "metric"], value_vars=["paper", "ours"], var_name="source")
        parts.append(long.assign(table=f"Table {t}", metric=long.metric.map(METRIC_NAMES)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def plot_ablations(tables: dict[int, pd.DataFrame], metric: str = "mAP"):
    """Bar charts of the MARS ablations (Tables 3-6), ours beside the paper's number."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = ablation_frame(tables, (metric,))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
    for ax, (name, part) in zip(axes, data.groupby("table", sort=True)):
        sns.barplot(data=part, x="row", y="value", hue="source", ax=ax, palette="deep")
        ax.set_title(name)
        ax.set_xlabel("")
        ax.set_ylabel(f"MARS {METRIC_NAMES.get(metric, metric)} (%)")
        ax.tick_params(axis="x", rotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.tight_layout()
    return fig


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """metrics.jsonl of a run as a frame (one line per logged step or epoch); empty if absent."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return pd.DataFrame()
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.json_normalize(lines)


def _curve_axes(frame: pd.DataFrame) -> tuple[str | None, list[str]]:
    x = next((c for c in ("step", "global_step", "iteration", "epoch") if c in frame.columns), None)
    ys = [c for c in frame.columns if "loss" in c.lower() and pd.api.types.is_numeric_dtype(frame[c])]
    return x, ys


def plot_training_curve(run_dir: str | Path, ax=None, title: str | None = None):
    """Loss curves of one run from its metrics.jsonl."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = read_metrics(run_dir)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    x, ys = _curve_axes(frame)
    if frame.empty or not ys:
        ax.text(0.5, 0.5, "no training curve logged", ha="center", va="center", transform=ax.transAxes)
        return ax
    frame = frame.reset_index().rename(columns={"index": "record"})
    x = x or "record"
    long = frame[[x, *ys]].dropna(subset=ys, how="all").melt(id_vars=[x], var_name="term", value_name="value")
    sns.lineplot(data=long, x=x, y="value", hue="term", ax=ax)
    ax.set_title(title or Path(run_dir).name)
    return ax


def plot_training_curves(runs: list[Run], max_runs: int = 6):
    """Loss curves of the first ``max_runs`` finished runs, one panel each."""
    import matplotlib.pyplot as plt

    done = [r for r in runs if (r.run_dir / "metrics.jsonl").is_file()][:max_runs]
    cols = 3
    rows = max(1, -(-len(done) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.4 * rows), squeeze=False)
    for ax, run in zip(axes.flat, done):
        plot_training_curve(run.run_dir, ax=ax, title=f"{run.experiment} / {DATASET_NAMES[run.dataset]}")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(done):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
