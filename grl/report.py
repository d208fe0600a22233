"""Finished runs -> the paper's Tables 1-6 with, for every cell, the paper's number, ours and the difference.

Everything here is plain data work on pandas frames, so it is tested with fake results;
``notebooks/report.ipynb`` only calls these functions and displays what they return.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from importlib import resources
from pathlib import Path

import pandas as pd

from grl import run_folder
from grl.config import overrides_tag
from grl.experiments import CATALOGUE, PROFILES, TABLE_TITLES, TABLES, Run, load_result
from grl.provenance import git_commit
from grl.stats import (
    VERDICTS,
    Interval,
    adjusted_verdict,
    holm,
    paired_difference,
    paired_test,
    t_interval,
    verdict,
    within_margin,
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


def _samples(ours: pd.DataFrame) -> dict[tuple, dict[tuple[int, int], float]]:
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
    for cell, values in _samples(ours).items():
        iv = t_interval(values.values())
        records.append({**dict(zip(CELL, cell)), "mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n})
    return pd.DataFrame(records, columns=[*CELL, "mean", "low", "high", "n"])


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
        experiment, dataset = _experiment_and_dataset(name)
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
    samples = _samples(ours)
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
    samples = _samples(ours)
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


# ---------------------------------------------------------------------------------------
# provenance
def _overrides_line(runs: list[Run]) -> str:
    """The config fields the study's runs were given on the command line (an experiment's own fields stay its own,
    so a field may apply to some runs only)."""
    tags = sorted({overrides_tag(r.overrides) for r in runs if r.overrides})
    if not tags:
        return "none (the profile's settings)"
    some = [r for r in runs if not r.overrides]
    return ", ".join(f"`{t}`" for t in tags) + (
        f" (not on {len(some)} runs whose experiment fixes them)" if some else ""
    )


def failed_runs(runs: list[Run], status_path: str | Path) -> dict[str, str]:
    """Run name -> the error, for each of ``runs`` that the last batch marked failed (its ``status.json``) and that
    has no result (a diverged run writes none; a failed run that a later batch finished is not failed)."""
    try:
        status = json.loads(Path(status_path).read_text()).get("runs", {})
    except (OSError, ValueError):
        return {}
    return {
        run.name: str(status[run.name].get("error", "failed"))
        for run in runs
        if status.get(run.name, {}).get("status") == "failed" and load_result(run.run_dir, run.config.key()) is None
    }


def _experiment_and_dataset(run_name: str) -> tuple[str, str]:
    """``<experiment>-<dataset>-split<k>-seed<s>-<key>`` -> (experiment, dataset)."""
    head = run_name.rsplit("-split", 1)[0]
    experiment, _, dataset = head.rpartition("-")
    return experiment, dataset


def runs_frame(runs: list[Run], failed: dict[str, str] | None = None) -> pd.DataFrame:
    """One line per run: name, status (done, failed, stale or missing), epochs, wall time, device, seed, data root,
    commit."""
    records = []
    failed = failed or {}
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        state = (
            "done"
            if result
            else ("failed" if run.name in failed else "stale" if load_result(run.run_dir) else "missing")
        )
        records.append(
            {
                "run": run.name,
                "experiment": run.experiment,
                "dataset": run.dataset,
                "split": run.split,
                "status": state,
                "epochs": result.get("epochs_done") if result else None,
                "wall_time_s": round(float(result.get("wall_time_s", 0.0)), 1) if result else None,
                "device": result.get("device") if result else None,
                "seed": run.config.seed,
                "data_root": _data_label(run),
                "commit": result.get("commit") if result else None,
            }
        )
    return pd.DataFrame(records)


def _data_label(run: Run) -> str:
    root = run.config.data_root
    if not root:
        return (
            "(built-in synthetic)"
            if run.config.data_size == "full"
            else f"(built-in synthetic, {run.config.data_size})"
        )
    return root


def _machines(runs: list[Run]) -> list[str]:
    """Distinct machine descriptions of the finished runs: CPU, ISA features, threads, library versions."""
    seen = []
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        machine = (result or {}).get("machine")
        if not machine:
            continue
        text = (
            f"{machine.get('cpu', '?')} [{', '.join(machine.get('isa', [])) or 'no AVX2'}; ATen "
            f"{machine.get('aten_cpu_capability', '?')}], {machine.get('threads', '?')} torch thread(s), Python "
            f"{machine.get('python', '?')}, torch {machine.get('torch', '?')}, numpy {machine.get('numpy', '?')}"
        )
        if machine.get("environment"):
            text += f", {' '.join(f'{k}={v}' for k, v in sorted(machine['environment'].items()))}"
        if text not in seen:
            seen.append(text)
    return seen


def provenance(profile: str, runs: list[Run]) -> str:
    """Markdown bullet list: date, profile, data (and the generator's version), seeds, runs, commits,
    the machines that trained (CPU, instruction-set features, threads, library versions), the machine
    that built the report, arithmetic, wall time, MARS gallery convention."""
    from grl.provenance import machine_info

    frame = runs_frame(runs)
    done = frame[frame.status == "done"] if len(frame) else frame
    prof = PROFILES[profile]
    roots = sorted(set(frame.data_root)) if len(frame) else []
    versions = sorted({f"{r.dataset} {r.config.data_version}" for r in runs if r.config.data_version})
    mars = [r for r in runs if r.dataset == "mars"]
    if mars:
        gallery = (
            "gallery **includes** the query tracklets (the authors' release convention)"
            if mars[0].config.mars_gallery_includes_queries
            else "gallery **excludes** the query tracklets (queries without a cross-camera match are skipped)"
        )
    else:
        gallery = "no MARS run selected"

    def listed(column: str) -> str:
        values = sorted({str(v) for v in done[column].dropna()}) if len(done) else []
        return ", ".join(values) or "—"

    here = machine_info()
    wall = float(done.wall_time_s.sum()) if len(done) else 0.0
    dtypes = sorted({r.config.dtype for r in runs})
    lines = [
        f"- **Report built**: {time.strftime('%Y-%m-%d %H:%M %Z')} at commit {git_commit(short=True)} on {here['cpu']} "
        f"[{', '.join(here['isa']) or 'no AVX2'}], Python {here['python']}, torch {here['torch']}, numpy {here['numpy']}",
        f"- **Profile**: `{profile}` — {prof.description}",
        f"- **Data**: {', '.join(roots) or '—'}" + (f"; generator version {', '.join(versions)}" if versions else ""),
        f"- **Seeds**: {', '.join(str(s) for s in sorted(set(frame.seed))) if len(frame) else '—'} "
        f"(each cell: mean ± 95 % t-interval over seeds × splits)",
        f"- **Runs**: {len(done)} of {len(frame)} done",
        f"- **Commit** (of the runs): {listed('commit')}",
        f"- **Trained on**: {'; '.join(_machines(runs)) or listed('device')}",
        f"- **Arithmetic**: {', '.join(dtypes)}"
        + (
            " (float32 results move in their last digits with the CPU's instruction set and the thread count; "
            "the intervals over seeds are what carries across machines)"
            if "float32" in dtypes
            else " on a fixed thread count (identical on every x86-64 CPU with AVX2 or AVX-512)"
        ),
        f'- **Recipe**: {", ".join(sorted({r.config.recipe for r in runs})) or "—"} (README, "The authors\' recipe")',
        f"- **Overrides** (--set / --config): {_overrides_line(runs)}",
        "- **Model selection**: "
        + (
            "⚠ **test-set selection** — each run keeps the epoch with the best Rank-1 on the *test set* "
            "(the authors' release does this); these numbers are optimistic and not comparable to a held-out choice"
            if any(r.config.select_best for r in runs)
            else "the model after the last epoch (no selection)"
        ),
        f"- **Training + evaluation wall time**: {wall / 60:.1f} min in total",
        f"- **MARS gallery convention**: {gallery}",
        "- **Test distance**: cosine; iLIDS-VID / PRID2011 numbers are averaged over the profile's splits",
    ]
    return "\n".join(lines)


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


def committed_reference(profile: str) -> tuple[pd.DataFrame | None, str]:
    """The reference results of a profile: ``reports/<profile>/results.csv`` as committed at HEAD
    (so a study rebuilt in the same folder still compares with what was committed), else the file
    on disk; (None, why) when there is none."""
    from grl.paths import project_root

    root = project_root()
    rel = f"reports/{profile}/results.csv"
    if root is None:
        return None, f"no reference table: not a source checkout, so {rel} is not here"
    try:
        out = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            return read_results_csv(io.StringIO(out.stdout)), f"`{rel}` as committed at {git_commit(short=True)}"
    except (OSError, subprocess.SubprocessError):
        pass
    if (root / rel).is_file():
        return read_results_csv(root / rel), f"`{root / rel}`"
    return None, f"no reference table: {rel} is neither committed nor on disk"


def compare_with_reference(ours: pd.DataFrame, reference: pd.DataFrame) -> tuple[bool, str, pd.DataFrame]:
    """(comparable, summary, per-cell frame) of this study against a reference study.

    Not comparable -- and never compared -- when the profiles or the synthetic data's generator
    versions differ. Otherwise, for every table cell both have: each mean and 95 % interval, whether
    our mean lies inside the reference's interval and the reference's inside ours; and for every
    comparison of Tables 2-6 whether the two verdicts match.
    """
    empty = pd.DataFrame()
    if ours.empty or reference.empty:
        return (
            False,
            "Nothing to compare: "
            + ("this study has no finished run." if ours.empty else "the reference table is empty."),
            empty,
        )
    for column, what in (("profile", "profile"), ("data_version", "data-generator version")):
        mine = {(r.dataset, str(getattr(r, column))) for r in ours.itertuples()}
        theirs = {(r.dataset, str(getattr(r, column))) for r in reference.itertuples()}
        if column == "profile" and {p for _, p in mine} != {p for _, p in theirs}:
            return (
                False,
                (
                    f"Not comparable: the reference was made with profile(s) {sorted({p for _, p in theirs})}, "
                    f"this study with {sorted({p for _, p in mine})}."
                ),
                empty,
            )
        shared = {d for d, _ in mine} & {d for d, _ in theirs}
        if {x for x in mine if x[0] in shared} != {x for x in theirs if x[0] in shared}:
            return (
                False,
                (
                    f"Not comparable: the reference was made with another {what} "
                    f"(reference: {sorted(theirs)}; this study: {sorted(mine)})."
                ),
                empty,
            )
    a, b = cell_statistics(ours), cell_statistics(reference)
    merged = a.merge(b, on=CELL, suffixes=("", "_ref"))
    if merged.empty:
        return False, "Nothing to compare: this study and the reference share no table cell.", empty
    merged["ours_in_ref"] = [
        Interval(r.mean_ref, r.low_ref, r.high_ref, r.n_ref).contains(r.mean) for r in merged.itertuples()
    ]
    merged["ref_in_ours"] = [Interval(r.mean, r.low, r.high, r.n).contains(r.mean_ref) for r in merged.itertuples()]
    va, vb = comparisons(ours), comparisons(reference)
    keys = ["table", "row", "dataset", "metric"]
    cols = keys + ["verdict", "verdict_holm"]
    verdicts = va[cols].merge(vb[cols], on=keys, suffixes=("", "_ref"))
    matching = int((verdicts.verdict == verdicts.verdict_ref).sum())
    matching_holm = int((verdicts.verdict_holm == verdicts.verdict_holm_ref).sum())
    opposite = int(
        (
            ((verdicts.verdict_holm == "agrees") & (verdicts.verdict_holm_ref == "contradicts"))
            | ((verdicts.verdict_holm == "contradicts") & (verdicts.verdict_holm_ref == "agrees"))
        ).sum()
    )
    both = int((merged.ours_in_ref & merged.ref_in_ours).sum())
    headline = _headline_verdicts(va), _headline_verdicts(vb)
    summary = (
        f"{len(merged)} cells in common: in {both} ({100 * both / len(merged):.0f} %) each mean lies inside the "
        f"other's 95 % interval; ours inside the reference's in {int(merged.ours_in_ref.sum())}, the reference's "
        f"inside ours in {int(merged.ref_in_ours.sum())}. {matching_holm} of {len(verdicts)} verdicts after Holm "
        f"({matching} before it) match the reference's; {opposite} agree on one side and contradict on the "
        f"other. GRL vs the Baseline (after Holm), this study: {headline[0]}; the reference: {headline[1]}"
        f" — {'the same' if headline[0] == headline[1] else 'different'}."
    )
    merged.attrs["numbers"] = {
        "cells": len(merged),
        "both_inside": both,
        "verdicts": len(verdicts),
        "matching": matching,
        "matching_holm": matching_holm,
        "opposite": opposite,
        "headline": headline,
    }
    return True, summary, merged


def _headline_verdicts(frame: pd.DataFrame) -> str:
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


def reference_comparison(profile: str, ours: pd.DataFrame, reference_path=None) -> tuple[dict | None, str, str]:
    """(numbers, label, Markdown) of this study against the reference (a given results.csv, else the committed
    one); numbers is None when nothing was compared (no reference, not comparable, or this study is it)."""
    if reference_path:
        reference, label = read_results_csv(reference_path), f"`{_shown_path(reference_path)}`"
    else:
        reference, label = committed_reference(profile)
    if reference is None:
        return None, label, label
    if _same_numbers(ours, reference):
        return None, label, f"Reference: {label}. This study *is* the reference (identical per-seed numbers)."
    ok, summary, merged = compare_with_reference(ours, reference)
    return (merged.attrs.get("numbers") if ok else None), label, f"Reference: {label}.\n\n{summary}"


def _shown_path(path) -> str:
    """``path`` relative to the checkout when it lies inside it: a committed report never names this machine's
    folders."""
    from grl.paths import project_root

    root, resolved = project_root(), Path(path).resolve()
    return str(resolved.relative_to(root)) if root and resolved.is_relative_to(root) else str(path)


def _same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    keys = ["experiment", "dataset", "split", "seed", "feature", "metric"]
    if len(a) != len(b):
        return False
    x = a.sort_values(keys).reset_index(drop=True)
    y = b.sort_values(keys).reset_index(drop=True)
    return bool(
        (x[keys].astype(str).values == y[keys].astype(str).values).all() and ((x.value - y.value).abs() < 5e-6).all()
    )


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


def _html(styler, wrap_headers: bool = False) -> str:
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
        html.append(_html(styler))
    return "\n".join(html)


MAX_TABLE_COLUMNS = 6


def comparisons_html(frame: pd.DataFrame, decimals: int = 1) -> str:
    """Every comparison of Tables 2-6 as an HTML table inside a collapsed <details> (the report's appendix)."""
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
    return (
        f"<details><summary>Every comparison of Tables 2-6 ({len(frame)}): paired differences and verdicts"
        f"</summary>{_html(styler)}</details>"
    )


def runs_table_html(runs: list[Run], metric: str = "mAP", failed: dict[str, str] | None = None) -> str:
    """A narrow table of the runs: experiment, dataset, seed, status (done, FAILED or missing), minutes, and the
    run's main metric."""
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
                "status": "done" if result else ("FAILED" if run.name in failed else "missing"),
                "minutes": f"{result['wall_time_s'] / 60:.1f}" if result else "",
                f"{METRIC_NAMES[metric]} ({run.config.main_feature})": f"{main[metric]:.1f}" if metric in main else "",
            }
        )
    styler = pd.DataFrame(records).style.set_uuid("runs").hide(axis="index")
    return _html(styler)


# ---------------------------------------------------------------------------------------
# the Markdown report
def pretraining_table(ours: pd.DataFrame, metrics=("mAP", "rank1")) -> pd.DataFrame:
    """Table 7 (ours, not in the paper): Baseline and GRL on MARS with and without the pretrained backbone
    (mean and 95 % interval over seeds), and the paired per-seed effect of the pretraining."""
    samples = _samples(ours)
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


FIGURES = {  # file in the profile's folder -> caption in report.md
    "figure4_query*.png": "Figure 4 (GRL on MARS, first seed): frames, R_t, forward and backward memories",
    "ablation_differences_mAP.png": "Every comparison of Tables 2-6, mAP: our paired difference (95 % interval) and the paper's (x)",
    "ablation_differences_rank1.png": "The same for Rank-1",
    "training_curves.png": "Training on MARS (first seed): one panel per loss term",
    "ranked_lists.png": "Ranked lists, GRL beside the Baseline on the same MARS queries (green right, red wrong, grey ignored)",
}


def save_figures(out: str | Path, runs: list[Run]) -> list[Path]:
    """The report's plots as PNG files in ``out`` (report.md shows them): the ablation differences, the
    training curves and the ranked lists. Figure 4 is written by figure4.ipynb."""
    import matplotlib.pyplot as plt

    from grl import viz

    out = Path(out)
    ours = results_frame(runs)
    agreement = comparisons(ours)
    written = []
    for metric in ("mAP", "rank1"):
        if len(agreement) and (agreement.metric == metric).any():
            fig = viz.plot_ablation_differences(agreement, metric)
            written.append(viz.save(fig, out / f"ablation_differences_{metric}.png"))
            plt.close(fig)
    shown = (
        [
            r
            for r in runs
            if r.dataset == "mars"
            and r.experiment in ("baseline", "gce", "grl")
            and r.seed == runs[0].seed
            and run_folder.metrics(r.run_dir).is_file()
        ]
        if runs
        else []
    )
    if shown:
        try:
            fig = viz.plot_training_curves([r.run_dir for r in shown])
        except ValueError:  # nothing with two distinct points to draw
            fig = None
        if fig is not None:
            written.append(viz.save(fig, out / "training_curves.png"))
            plt.close(fig)
    fig = ranked_lists_figure(runs)
    if fig is not None:
        written.append(viz.save(fig, out / "ranked_lists.png"))
    return written


def figures_markdown(out: str | Path) -> str:
    """Links to the report's PNG figures that exist in ``out``, with their captions."""
    lines = []
    for pattern, caption in FIGURES.items():
        for path in sorted(Path(out).glob(pattern)):
            lines.append(f"![{caption}]({path.name})\n\n*{caption}* (`{path.name}`)")
    return "\n\n".join(lines) if lines else "(no figure generated yet: `python -m grl reproduce` makes them)"


def ranked_lists_figure(runs: list[Run], dataset: str = "mars", queries: int = 4, k: int = 5, seed: int = 0):
    """GRL beside the Baseline on the same ``queries`` random queries of ``dataset`` (the first seed's runs, split
    0): each model's top-``k`` gallery tracklets (:func:`grl.viz.ranked_lists`). None when either run is not done."""
    from grl import viz
    from grl.engine.inference import ranked_lists

    first = min((r.seed for r in runs), default=0)
    pair = {
        r.experiment: r
        for r in runs
        if r.dataset == dataset
        and r.split == 0
        and r.seed == first
        and r.experiment in ("grl", "baseline")
        and r.is_done()
        and run_folder.has_model(r.run_dir)  # results copied without their models have no features to rank
    }
    if len(pair) < 2:
        return None
    lists = ranked_lists(
        [("GRL", pair["grl"].run_dir), ("Baseline", pair["baseline"].run_dir)], random_queries=queries, k=k, seed=seed
    )
    return viz.ranked_lists(lists)
