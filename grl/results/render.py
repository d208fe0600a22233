"""Tables rendered for the report: HTML (styled, verdicts coloured) and Markdown."""

from __future__ import annotations

import pandas as pd

from grl.catalogue import TABLE_TITLES
from grl.experiments import Run, load_result
from grl.results.frame import DATASET_NAMES, METRIC_NAMES
from grl.results.tables import pretraining_table, wide_table


def _comparisons_shown(frame: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """The comparisons as the report shows them: named datasets and metrics, signed differences, the verdict."""
    return pd.DataFrame(
        {
            "table": frame.table,
            "row": frame.row,
            "vs": frame.vs,
            "dataset": frame.dataset.map(DATASET_NAMES),
            "metric": frame.metric.map(METRIC_NAMES),
            "paper Δ": frame.paper_delta.map(lambda v: f"{v:+.{decimals}f}"),
            "our Δ [95 % interval]": [
                f"{r.ours_delta:+.{decimals}f} [{r.low:+.{decimals}f}, {r.high:+.{decimals}f}]"
                if r.n > 1
                else f"{r.ours_delta:+.{decimals}f} (one sample)"
                for r in frame.itertuples()
            ],
            "verdict": frame.verdict,
        }
    )


def comparisons_markdown(frame: pd.DataFrame, decimals: int = 1) -> str:
    """Every comparison as a Markdown table: the paper's difference, ours with its interval, the verdict."""
    if frame.empty:
        return "(no comparison yet)"
    shown = _comparisons_shown(frame, decimals)
    return shown.to_markdown(index=False)


# ---------------------------------------------------------------------------------------
# HTML tables (report.html, JupyterLab): pandas Styler, deterministic ids so nbval can compare them
VERDICT_BACKGROUND = {"agrees": "#d9f2d9", "contradicts": "#f8d0d0", "inconclusive": ""}
_TABLE_CSS = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em"},
    {"selector": "th, td", "props": "white-space: nowrap; padding: 2px 8px; border-bottom: 1px solid #ddd"},
    {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: bold; padding: 4px 0"},
]


def html_table(styler, wrap_headers: bool = False) -> str:
    """``wrap_headers``: column headings may break between words (the verdict tables' long headings), so the
    table fits a 1280-px page and A4; cells never break."""
    css = _TABLE_CSS + (
        [{"selector": "th", "props": "white-space: normal; vertical-align: bottom"}] if wrap_headers else []
    )
    return styler.set_table_styles(css).to_html()


def styled_table(table_no: int, table: pd.DataFrame, agreement: pd.DataFrame | None = None, decimals: int = 1) -> str:
    """One paper table as HTML: cells "ours ± 95 % half-interval / paper (ours - paper)", and each cell that is
    compared with the table's reference row shaded by its verdict (green agrees, red contradicts)."""
    wide = wide_table(table, decimals)
    colours = pd.DataFrame("", index=wide.index, columns=wide.columns)
    if agreement is not None and len(agreement):
        for r in agreement[agreement.table == table_no].itertuples():
            column = f"{DATASET_NAMES[r.dataset]} {METRIC_NAMES[r.metric]}"
            if r.row in colours.index and column in colours.columns and VERDICT_BACKGROUND.get(r.verdict):
                colours.loc[r.row, column] = f"background-color: {VERDICT_BACKGROUND[r.verdict]}"
    caption = f"{TABLE_TITLES[table_no]} — ours (mean ± 95 % interval half-width) / paper (difference)" + (
        "; shaded: the comparison with the reference row agrees (green) or contradicts (red) the paper"
        if table_no in (2, 3, 4, 5, 6)
        else ""
    )
    # A cell reads "42.7 ± 12.2 / 85.5 (-42.8)": past six such columns a table outgrows a 1280-px page (and
    # an A4 print), so a wide table (Table 1: three datasets) becomes one table per dataset.
    parts = [list(wide.columns)]
    if len(wide.columns) > MAX_TABLE_COLUMNS:
        by_dataset: dict[str, list] = {}
        for column in wide.columns:
            by_dataset.setdefault(str(column).split(" ")[0], []).append(column)
        parts = list(by_dataset.values())
    html = []
    for i, columns in enumerate(parts):
        part_caption = caption if len(parts) == 1 else f"{caption} — {str(columns[0]).split(' ')[0]}"
        styler = (
            wide[columns]
            .style.set_uuid(f"table{table_no}" + (f"-{i}" if len(parts) > 1 else ""))
            .set_caption(part_caption)
            .apply(lambda _, c=columns: colours[c], axis=None)
        )
        html.append(html_table(styler))
    return "\n".join(html)


MAX_TABLE_COLUMNS = 6


def comparisons_html(frame: pd.DataFrame, decimals: int = 1, collapsed: bool = True) -> str:
    """Every comparison of Tables 2-6 as an HTML table, inside a collapsed <details> unless ``collapsed`` is False
    (report.html's appendix collapses it itself)."""
    if frame.empty:
        return "<p>(no comparison yet)</p>"
    shown = _comparisons_shown(frame, decimals)
    styler = (
        shown.style.set_uuid("comparisons")
        .hide(axis="index")
        .map(
            lambda v: f"background-color: {VERDICT_BACKGROUND[v]}" if VERDICT_BACKGROUND.get(v) else "",
            subset=["verdict"],
        )
    )
    if not collapsed:
        return html_table(styler)
    return (
        f"<details><summary>Every comparison of Tables 2-6 ({len(frame)}): paired differences and verdicts"
        f"</summary>{html_table(styler)}</details>"
    )


def runs_table_html(runs: list[Run], metric: str = "mAP", failed: dict[str, str] | None = None) -> str:
    """:func:`runs_table` as HTML."""
    styler = runs_table(runs, metric, failed).style.set_uuid("runs").hide(axis="index")
    return html_table(styler)


def runs_table(runs: list[Run], metric: str = "mAP", failed: dict[str, str] | None = None) -> pd.DataFrame:
    """A narrow table of the runs: experiment, dataset, seed, split, status (done, FAILED or missing), minutes, and
    the run's main metric ("" where the run has none: not done)."""
    records = []
    failed = failed or {}
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        main = (result or {}).get("metrics", {}).get(run.config.main_feature, {})
        records.append(
            {
                "experiment": run.experiment,
                "dataset": DATASET_NAMES[run.dataset],
                "seed": run.config.seed,
                "split": run.split if run.dataset != "mars" else "",
                "status": "done" if result else ("FAILED" if run.name in failed else "missing"),
                "minutes": f"{result['wall_time_s'] / 60:.1f}" if result else "",
                "feature": run.config.main_feature,  # one column for every run: no empty cells across features
                METRIC_NAMES[metric]: f"{main[metric]:.1f}" if metric in main else "",
            }
        )
    return pd.DataFrame(records)


def pretraining_section(runs: list[Run], ours: pd.DataFrame) -> str:
    """What the pretrained backbone is, what it cost, and Table 7."""
    from grl.models.pretrain import pretraining_summary

    summary = next((s for s in (pretraining_summary(r.config) for r in runs) if s), None)
    if summary is None:
        return "No run of this selection starts from the synthetic pretrained backbone."
    text = (
        f"The tiny backbone is pretrained once, by frame-level identity classification on {summary['ids']} "
        f"synthetic people ({summary['frames']} frames) whose identities and outfits appear in no evaluation "
        f"set: {summary['steps']} steps, final training accuracy {summary['final_train_accuracy']:.1f} %, "
        f"{summary['seconds']:.0f} s (counted in the study's time). File: `data/pretrained/{summary['file']}`."
    )
    table = pretraining_table(ours)
    body = table.to_markdown(index=False) if len(table) else "(the from-scratch runs are not in this selection)"
    return f"{text}\n\n**{TABLE_TITLES[7]}** — mean ± 95 % interval half-width over seeds\n\n{body}\n"
