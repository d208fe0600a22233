"""The paper's Tables 1-6 assembled from the results frame: for every cell the paper's number, ours with its interval, the difference."""

from __future__ import annotations

import pandas as pd

from grl.catalogue import CATALOGUE, TABLE_TITLES, TABLES
from grl.results.frame import DATASET_NAMES, METRIC_NAMES, cell_samples, cell_statistics, paper_results
from grl.results.runs import experiment_and_dataset
from grl.stats import (
    Interval,
    paired_difference,
    t_interval,
)

# ---------------------------------------------------------------------------------------
# tables
TABLE_COLUMNS = ["row", "dataset", "feature", "metric", "paper", "ours", "low", "high", "n", "diff", "failed"]


def assemble_tables(
    ours: pd.DataFrame, paper: pd.DataFrame | None = None, failed: dict[str, str] | None = None
) -> dict[int, pd.DataFrame]:
    """One long frame per table: row, dataset, feature, metric, paper, ours (mean over seeds and
    splits), low / high (its 95 % interval), n (samples), diff (ours - paper), failed (how many of the
    row's runs failed, from :func:`failed_runs`: their numbers are in no cell).

    The metrics of a table are those the paper prints; a missing run leaves ``ours`` NaN.
    """
    failed_count: dict[tuple[str, str], int] = {}
    for name in failed or {}:
        experiment, dataset = experiment_and_dataset(name)
        failed_count[experiment, dataset] = failed_count.get((experiment, dataset), 0) + 1
    paper = paper_results() if paper is None else paper
    stats_of = {tuple(r[:4]): r for r in cell_statistics(ours).itertuples(index=False)}
    nan = float("nan")
    tables = {}
    for table in TABLES:
        records = []
        rows = [r for r in CATALOGUE if r.table == table]
        for row in rows:
            printed = paper[(paper.table == table) & (paper.row == row.row) & (paper.dataset == row.dataset)]
            if printed.empty:  # a row of ours only (e.g. + re-ranking): the metrics of the table's first row
                first = next(r for r in rows if r.dataset == row.dataset)
                printed = paper[(paper.table == table) & (paper.row == first.row) & (paper.dataset == row.dataset)]
                printed = printed.assign(value=nan)
            for p in printed.itertuples():
                cell = stats_of.get((row.experiment, row.dataset, row.feature, p.metric))
                mean, low, high, n = (cell.mean, cell.low, cell.high, cell.n) if cell else (nan, nan, nan, 0)
                records.append(
                    {
                        "row": row.row,
                        "dataset": row.dataset,
                        "feature": row.feature,
                        "metric": p.metric,
                        "paper": float(p.value),
                        "ours": mean,
                        "low": low,
                        "high": high,
                        "n": n,
                        "diff": mean - float(p.value),
                        "failed": failed_count.get((row.experiment, row.dataset), 0),
                    }
                )
        tables[table] = pd.DataFrame(records, columns=TABLE_COLUMNS)
    return tables


def wide_table(table: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Display form: one line per row label, one column per dataset+metric,
    cells "ours ± half-interval / paper (ours - paper)"."""

    def cell(r) -> str:
        paper = "—" if pd.isna(r.paper) else f"{r.paper:.{decimals}f}"
        failed = int(getattr(r, "failed", 0) or 0)
        if pd.isna(r.ours):
            return f"{'FAILED' if failed else '—'} / {paper}"
        ours = Interval(r.ours, r.low, r.high, int(r.n)).text(decimals)
        text = f"{ours} / {paper}" + ("" if pd.isna(r.diff) else f" ({r.diff:+.{decimals}f})")
        return text + (f"; {failed} run{'s' * (failed > 1)} FAILED, not counted" if failed else "")

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
    """One table as Markdown, titled; cells read "ours ± 95 % half-interval / paper (ours - paper)"."""
    body = wide_table(table, decimals).to_markdown() if len(table) else "(no rows)"
    return (
        f"**{TABLE_TITLES[table_no]}** — cells: ours (mean ± 95 % interval half-width over seeds and splits) "
        f"/ paper (difference of the means)\n\n{body}\n"
    )


def tables_markdown(tables: dict[int, pd.DataFrame], decimals: int = 1) -> str:
    return "\n".join(table_markdown(t, tables[t], decimals) for t in sorted(tables))


# ---------------------------------------------------------------------------------------
# the Markdown report
def pretraining_table(ours: pd.DataFrame, metrics=("mAP", "rank1")) -> pd.DataFrame:
    """Table 7 (ours, not in the paper): Baseline and GRL on MARS with and without the pretrained backbone
    (mean and 95 % interval over seeds), and the paired per-seed effect of the pretraining."""
    samples = cell_samples(ours)
    rows = {r.row: r for r in CATALOGUE if r.table == 7}
    pairs = (
        ("Baseline", "Baseline, pretrained backbone", "Baseline, from scratch"),
        ("GRL", "GRL, pretrained backbone", "GRL, from scratch"),
    )
    records = []
    for model, with_row, without_row in pairs:
        a, b = rows[with_row], rows[without_row]
        for metric in metrics:
            mine = samples.get((a.experiment, a.dataset, a.feature, metric))
            theirs = samples.get((b.experiment, b.dataset, b.feature, metric))
            if not mine or not theirs:
                continue
            pre, scratch = t_interval(mine.values()), t_interval(theirs.values())
            diff = paired_difference(mine, theirs)
            records.append(
                {
                    "model": model,
                    "metric": METRIC_NAMES[metric],
                    "pretrained": pre.text(1),
                    "from scratch": scratch.text(1),
                    "pretrained - scratch": diff.text(1) if diff.n else "—",
                }
            )
    return pd.DataFrame(records, columns=["model", "metric", "pretrained", "from scratch", "pretrained - scratch"])
