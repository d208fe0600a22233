"""The report's summaries: the three questions as tables (does GRL beat the Baseline, do the ablations go the
paper's way, did this study reproduce the reference), the study's precision, and how far the runs are from the
end of their learning curves (grl.results.document puts them in the report's order).

Each answer is a :class:`VerdictTable`: HTML with the verdicts as coloured cells in JupyterLab and report.html,
a plain-text table for nbval, and Markdown for report.md.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pandas as pd

from grl.experiments import Run, get_profile, load_result, profile_dir
from grl.results import precision
from grl.results.comparisons import comparisons, reference_row
from grl.results.frame import DATASET_NAMES, METRIC_NAMES, cell_samples
from grl.results.render import VERDICT_BACKGROUND, html_table
from grl.stats import t_interval

WORDS = {"agrees": "better", "contradicts": "worse", "inconclusive": "no conclusion"}  # GRL vs the Baseline
COLOURS = {
    **VERDICT_BACKGROUND,
    "better": VERDICT_BACKGROUND["agrees"],
    "worse": VERDICT_BACKGROUND["contradicts"],
    "yes": VERDICT_BACKGROUND["agrees"],
    "no": VERDICT_BACKGROUND["contradicts"],
}


class VerdictTable:
    """A small table whose verdict columns are coloured in HTML; ``str`` / ``repr`` give plain text."""

    def __init__(
        self, frame: pd.DataFrame, caption: str, coloured: tuple[str, ...] = (), empty: str = "", uuid: str = "summary"
    ):
        self.frame, self.caption, self.coloured, self.empty, self.uuid = frame, caption, coloured, empty, uuid

    def __repr__(self) -> str:
        if self.frame.empty:
            return self.empty
        return f"{self.caption}\n{self.frame.to_string(index=False)}"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        if self.frame.empty:
            return f"<p>{html.escape(self.empty)}</p>"
        columns = [c for c in self.coloured if c in self.frame.columns]
        styler = self.frame.style.set_uuid(self.uuid).hide(axis="index").set_caption(html.escape(self.caption))
        if columns:
            styler = styler.map(lambda v: f"background-color: {COLOURS[v]}" if COLOURS.get(v) else "", subset=columns)
        return html_table(styler, wrap_headers=True)

    def markdown(self) -> str:
        if self.frame.empty:
            return self.empty
        return f"{self.caption}\n\n{self.frame.to_markdown(index=False, disable_numparse=True)}"


def grl_vs_baseline_table(ours: pd.DataFrame, frame: pd.DataFrame | None = None) -> VerdictTable:
    """GRL (F^l+F^h) against the Baseline (F^g) per dataset and metric: both means, the paired difference with
    its 95 % interval, the samples it rests on, the minimum detectable effect, the verdict raw and after Holm
    (over every comparison of the study), and whether no effect larger than δ was seen."""
    frame = comparisons(ours) if frame is None else frame
    samples = cell_samples(ours)
    rows = frame[(frame.table == 2) & (frame.row == "+TRL (F^l+F^h)")] if len(frame) else frame
    records = []
    for r in rows.itertuples():
        grl = samples.get(("grl", r.dataset, "h+l", r.metric), {})
        base = samples.get(("baseline", r.dataset, "g", r.metric), {})
        interval = f"{r.ours_delta:+.1f} [{r.low:+.1f}, {r.high:+.1f}]" if r.n > 1 else f"{r.ours_delta:+.1f}"
        records.append(
            {
                "dataset": DATASET_NAMES[r.dataset],
                "metric": METRIC_NAMES[r.metric],
                "GRL": f"{t_interval(grl.values()).mean:.1f}",
                "Baseline": f"{t_interval(base.values()).mean:.1f}",
                "GRL − Baseline [95 %]": interval,
                "samples": int(r.n),
                "detectable (80 % power)": f"{r.mde:.1f}" if r.n > 1 else "—",
                "verdict": WORDS[r.verdict],
                "after Holm": WORDS[r.verdict_holm],
                "no effect > δ": f"yes (δ = {r.margin:g})" if r.within_margin else "no",
            }
        )
    table = pd.DataFrame(records)
    return VerdictTable(
        table,
        "GRL (F^l+F^h) against the Baseline (F^g), paired by seed and split",
        coloured=("verdict", "after Holm"),
        uuid="grl_vs_baseline",
        empty="No dataset has both a finished GRL run and a finished Baseline run yet.",
    )


def ablation_table(frame: pd.DataFrame) -> VerdictTable:
    """Per paper table, how many comparisons agree with the paper, contradict it or are inconclusive, after
    Holm and before it, how many of the inconclusive ones saw no effect larger than δ, and the median minimum
    detectable effect."""
    records = []
    for table, part in frame.groupby("table", sort=True) if len(frame) else []:
        held = part.verdict_holm
        records.append(
            {
                "table": int(table),
                "vs": reference_row(int(table)),
                "comparisons": len(part),
                "agree (Holm)": int((held == "agrees").sum()),
                "contradict (Holm)": int((held == "contradicts").sum()),
                "inconclusive (Holm)": int((held == "inconclusive").sum()),
                "of which no effect > δ": int(((held == "inconclusive") & part.within_margin).sum()),
                "agree / contradict, raw": f"{int((part.verdict == 'agrees').sum())} / "
                f"{int((part.verdict == 'contradicts').sum())}",
                "median detectable (80 % power)": f"{part.mde.median():.1f}",
                "samples": f"{int(part.n.min())}"
                if part.n.min() == part.n.max()
                else f"{int(part.n.min())}-{int(part.n.max())}",
            }
        )
    table = pd.DataFrame(records)
    if len(table):
        total = {
            "table": "all",
            "vs": "",
            "comparisons": int(table.comparisons.sum()),
            **{
                c: int(table[c].sum())
                for c in ("agree (Holm)", "contradict (Holm)", "inconclusive (Holm)", "of which no effect > δ")
            },
            "agree / contradict, raw": f"{int((frame.verdict == 'agrees').sum())} / "
            f"{int((frame.verdict == 'contradicts').sum())}",
            "median detectable (80 % power)": f"{frame.mde.median():.1f}",
            "samples": "",
        }
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return VerdictTable(
        table,
        f"Every row of Tables 2-6 against its reference row; Holm's adjustment over all {len(frame)} comparisons",
        uuid="ablations",
        empty="No row can be compared with its reference row yet (missing runs).",
    )


def reference_table(numbers: dict | None, label: str, text: str = "") -> VerdictTable:
    """This study against the reference (grl.results.reference.reference_comparison): one row per criterion of a
    reproduction (docs/study.md: in at least 95 % of cells the difference of the two means lies within its Welch 95 %
    interval of 0, all but at most two verdicts equal after Holm, none agreeing on one side and contradicting on
    the other, the same GRL-vs-Baseline headline); when nothing was compared, one row saying so and why (the first
    sentence of ``text``)."""
    label = label.replace("`", "")
    caption = f"This study against the reference ({label})"
    if not numbers:
        why = text.replace("`", "").replace("*", "").split("\n\n")[-1].strip() or label
        why = why.split(" (")[0].split(". ")[0].rstrip(".") + "."
        return VerdictTable(pd.DataFrame([{"compared": "no", "why": why}]), caption, uuid="reference")
    cells, both = numbers["cells"], numbers["both_inside"]
    within = numbers.get("cells_difference_within_interval", 0)
    verdicts, equal = numbers["verdicts"], numbers["matching_holm"]
    same = numbers["headline"][0] == numbers["headline"][1]
    table = pd.DataFrame(
        [
            {
                "criterion": "cells whose difference of means lies within its Welch 95 % interval of 0",
                "this study vs the reference": f"{within} of {cells} ({100 * within / max(cells, 1):.0f} %)",
                "met": "yes" if within >= 0.95 * cells else "no",
                "target": "at least 95 %",
            },
            {
                "criterion": "verdicts equal after Holm",
                "this study vs the reference": f"{equal} of {verdicts} (raw: {numbers['matching']})",
                "met": "yes" if equal >= verdicts - 2 else "no",
                "target": "all but at most two (46 of 48)",
            },
            {
                "criterion": "comparisons agreeing on one side and contradicting on the other (Holm)",
                "this study vs the reference": str(numbers["opposite"]),
                "met": "yes" if numbers["opposite"] == 0 else "no",
                "target": "none",
            },
            {
                "criterion": "GRL vs the Baseline, every dataset and metric (Holm)",
                "this study vs the reference": "the same" if same else "different",
                "met": "yes" if same else "no",
                "target": "the same",
            },
            {
                "criterion": "cells with each mean inside the other's 95 % interval (for information)",
                "this study vs the reference": f"{both} of {cells} ({100 * both / max(cells, 1):.0f} %)",
                "met": "",
                "target": "",
            },
        ]
    )
    return VerdictTable(table, caption, uuid="reference", coloured=("met",))


def precision_section(
    profile: str, runs: list[Run], ours: pd.DataFrame, agreement: pd.DataFrame, jobs: int | None = None
) -> str:
    """Markdown: the half-widths this study reached against the targets (grl.results.precision), the frontier of
    half-width against minutes (the study's first k seeds), and the measured variance components when
    ``python -m grl.bench.variance`` wrote them into the profile's folder (variance.json)."""
    if agreement.empty:
        return "No comparison yet, so no precision to report."
    parts = [
        "Paired 95 % half-widths (points) against the study's targets:\n\n"
        + precision.precision_table(agreement).to_markdown(index=False)
    ]
    prof = get_profile(profile)
    cap = prof.max_seeds
    if cap and runs:
        over = precision.over_target(agreement)
        first = ", ".join(map(str, prof.seeds))
        parts.append(
            f'Seeds were adaptive (docs/study.md, "Adaptive seeds"): every comparison trained on seeds {first}, '
            f"then each one still wider than its target got one more paired seed per round, at most {cap} seeds. "
            "Stopping on the width makes these 95 % intervals cover 91-95 % of the time (simulated there). "
            + (
                f"{len(over)} comparison(s) still wider than the target when the seeds stopped (the cap, or a failed run): "
                + "; ".join(f"{r.dataset} {r.row} vs {r.vs} ({r.half_width:.2f}, n = {r.n})" for r in over.itertuples())
                + "."
                if len(over)
                else "Every comparison reached its target."
            )
        )
    wall = {}
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        if result is not None:
            wall[(run.experiment, run.dataset, run.split, run.config.seed)] = float(result.get("wall_time_s", 0.0))
    seeds = sorted({int(s) for s in ours.seed.unique()}) if len(ours) else []
    jobs = jobs or max(1, min(os.cpu_count() or 1, 2))
    if len(seeds) >= 2:
        table = precision.frontier(ours, wall, seeds, jobs=jobs)
        parts.append(
            f"What the first k seeds give (the frontier): half-widths recomputed on those seeds' runs; "
            f"minutes = the measured wall times of those runs ÷ {jobs} jobs, without data generation, "
            f"pretraining and the report:\n\n" + table.to_markdown(index=False)
        )
    per_seed = {
        ds: sum(w for (e, d, sp, s), w in wall.items() if d == ds)
        / jobs
        / 60
        / max(1, len({s for (e, d, sp, s) in wall if d == ds}))
        for ds in ("mars", "ilidsvid", "prid2011")
    }
    text = precision.projection(agreement, per_seed["mars"], per_seed["ilidsvid"] + per_seed["prid2011"])
    if text:
        parts.append(text)
    for path in sorted(profile_dir(profile).glob("variance*.json")):
        analysis = json.loads(path.read_text())
        parts.append(
            f"Where the noise comes from (`python -m grl.bench.variance`, `{path.name}`: "
            f"{analysis.get('label', 'the design of its day')}; seeds {analysis['seeds']}, splits "
            f"{analysis['splits']} of the iLIDS-VID-like set):\n\n"
            + precision.table_markdown(analysis, "mAP")
            + "\n\n"
            + precision.table_markdown(analysis, "rank1")
        )
    return "\n\n".join(parts)


# ---- the study's runs against the curves trained to the end (docs/convergence.md) ----------------------------
CONVERGENCE_DOC = "../../docs/convergence.md"  # from reports/PROFILE/, where report.md and report.html live


def stopped_early_note(profile: str, convergence_dir: str | Path | None = None) -> str:
    """Markdown saying how far this profile trains the MARS-like runs against the curves of
    ``python -m grl.bench.convergence`` (``reports/convergence/curves.csv``): its final Baseline, GRL and release
    numbers with their intervals over seeds. "" for the paper profile, whose length is the paper's."""
    from grl.experiments import PROFILES
    from grl.paths import reports_dir
    from grl.stats import paired_difference

    if profile not in ("quick", "cpu"):
        return ""
    steps, default_steps = (
        PROFILES[p].overrides["epochs"] * PROFILES[p].overrides["steps_per_epoch"] for p in (profile, "cpu")
    )
    text = (
        f"**Stopped early.** This profile trains every MARS-like run for {steps} steps. The learning curves trained "
        f"four times longer ([the convergence investigation]({CONVERGENCE_DOC})) are still climbing at the `cpu` profile's {default_steps} steps, "
        "so this study's verdicts measure how fast each arm learns, not what it learns at the end."
    )
    path = Path(convergence_dir or reports_dir() / "convergence") / "curves.csv"
    if not path.is_file():
        return text
    curves = pd.read_csv(path)
    last = curves[curves["finished"] & (curves["epoch"] == curves["epochs"]) & (curves["dataset"] == "mars")]

    def samples(arm: str, feature: str) -> dict:
        rows = last[last["arm"] == arm]
        column = f"mAP_{feature}"
        return {} if column not in rows else dict(zip(rows["seed"], rows[column]))

    # The longest runs of the default recipe (the recipe rule) when measured, else paper mode's first round.
    pairs = [(f"baseline-rule{x}", f"grl-rule{x}", "the recipe rule") for x in ("-x4", "-x2", "")]
    found = [(b, g, mode) for b, g, mode in pairs + [("baseline", "grl", "paper mode")] if samples(b, "g")]
    found = [(b, g, mode) for b, g, mode in found if samples(g, "h+l")]
    if not found:
        return text
    base_arm, grl_arm, mode = found[0]
    base, grl, release = samples(base_arm, "g"), samples(grl_arm, "h+l"), samples("release", "h+l")
    length = int(last.loc[last["arm"].isin([base_arm, grl_arm]), "step"].max())
    parts = [f"Baseline {t_interval(base.values()).text()}", f"GRL ({mode}) {t_interval(grl.values()).text()}"]
    if release and mode == "paper mode":
        parts.append(f"GRL with the authors' recipe {t_interval(release.values()).text()}")
    gap = paired_difference(grl, base)
    return (
        f"{text} Trained for {length} steps (seeds {', '.join(str(s) for s in sorted(base))}), the MARS-like mAP "
        f"ends at: {'; '.join(parts)}; GRL − Baseline = {gap.mean:+.1f} [{gap.low:+.1f}, {gap.high:+.1f}] "
        f"(paired 95 % interval over {gap.n} seeds), against {_paper_mars_gap():+.1f} in the paper (Table 2)."
    )


def convergence_figure() -> Path | None:
    """``reports/convergence/curves.png`` (python -m grl.bench.convergence) when it has been made."""
    from grl.paths import reports_dir

    path = reports_dir() / "convergence" / "curves.png"
    return path if path.is_file() else None


def _paper_mars_gap() -> float:
    """The paper's GRL (F^l+F^h) − Baseline (F^g) mAP on MARS, Table 2."""
    from grl.results.frame import paper_results

    paper = paper_results()
    rows = paper[(paper["table"] == 2) & (paper["dataset"] == "mars") & (paper["metric"] == "mAP")]
    value = dict(zip(rows["row"], rows["value"]))
    return value["+TRL (F^l+F^h)"] - value["Baseline (F^g)"]
