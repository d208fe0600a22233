"""The analysis of ``python -m grl.bench.convergence``'s runs: curves, final values, paired comparisons, cost.

Reads only what the runs wrote (``metrics.jsonl``, ``result.json``, ``final_g.json`` under ``runs/``); trains
nothing. The comparisons are those of docs/convergence.md's hypotheses, each a family with Holm's correction.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from grl import run_folder
from grl.stats import holm, paired_test, t_interval

RUN_NAME = re.compile(r"^(mars|ilidsvid|prid2011)-(.+)-s(\d+)(?:-split(\d+))?$")
FLAT_MAP_POINTS = 1.0  # docs/convergence.md, "Flattened"
FLAT_LOSS_FRACTION = 0.03
# The evaluation the last one is compared with, as a share of the run's epochs: epoch 28 of 36 on the MARS-like
# set (56 of 72 at twice the steps), 9 of 12 on the small sets.
FLAT_FROM = {"mars": 7 / 9, "ilidsvid": 3 / 4, "prid2011": 3 / 4}
DATASET_NAMES = {"mars": "MARS-like", "ilidsvid": "iLIDS-VID-like", "prid2011": "PRID-like"}


def load_curves(root: Path) -> pd.DataFrame | None:
    """One row per (run, epoch): loss terms, and mAP_/rank1_<feature> where the test set was evaluated."""
    rows = []
    for run in sorted((Path(root) / "runs").glob("*")):
        match = RUN_NAME.match(run.name)
        if not match or not run_folder.metrics(run).is_file():
            continue
        dataset, arm, seed, split = match.group(1), match.group(2), int(match.group(3)), int(match.group(4) or 0)
        result_path, final_g_path = run_folder.result(run), run_folder.final_g(run)
        result = json.loads(result_path.read_text()) if result_path.is_file() else None
        final_g = json.loads(final_g_path.read_text()) if final_g_path.is_file() else {}
        for line in run_folder.metrics(run).read_text().splitlines():
            record = json.loads(line)
            row = {
                "dataset": dataset,
                "arm": arm,
                "seed": seed,
                "split": split,
                "epoch": record["epoch"],
                "step": record["epoch"] * record["steps"],
                "finished": result is not None,
                "epochs": result["config"]["epochs"] if result else math.nan,
                "wall_time_s": result["wall_time_s"] if result else math.nan,
            }
            row.update({k: v for k, v in record.items() if k.startswith("loss")})
            for feature, metrics in record.get("eval", {}).items():
                row[f"mAP_{feature}"], row[f"rank1_{feature}"] = metrics["mAP"], metrics["rank1"]
            if result and record["epoch"] == result["config"]["epochs"] and "g" in final_g:
                row["mAP_g"], row["rank1_g"] = final_g["g"]["mAP"], final_g["g"]["rank1"]
            rows.append(row)
    return pd.DataFrame(rows) if rows else None


def main_feature(arm: str) -> str:
    return "g" if arm.startswith("baseline") else "h+l"


def finals(curves: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every finished run."""
    done = curves[curves["finished"] & (curves["epoch"] == curves["epochs"])]
    return done.reset_index(drop=True)


def _samples(final: pd.DataFrame, dataset: str, arm: str, feature: str, metric: str = "mAP") -> dict:
    rows = final[(final["dataset"] == dataset) & (final["arm"] == arm)]
    column = f"{metric}_{feature}"
    if column not in rows:
        return {}
    return {(r.seed, r.split): getattr(r, column.replace("+", "_")) for r in _rows(rows) if not _nan(r, column)}


def _rows(frame: pd.DataFrame):
    return frame.rename(columns=lambda c: c.replace("+", "_")).itertuples()


def _nan(row, column: str) -> bool:
    value = getattr(row, column.replace("+", "_"), math.nan)
    return value is None or (isinstance(value, float) and math.isnan(value))


# (family, label, (arm, feature), (reference arm, feature)); a family's p-values are Holm-adjusted together.
def comparisons(arms: set[str]) -> list[tuple[str, str, tuple, tuple]]:
    out = [
        ("headline", "GRL − Baseline", ("grl", "h+l"), ("baseline", "g")),
        ("headline", "GRL (release recipe) − Baseline", ("release", "h+l"), ("baseline", "g")),
        ("headline", "GRL (release recipe) − GRL (paper mode): the gap", ("release", "h+l"), ("grl", "h+l")),
        ("headline", "GRL (release) − Baseline (release)", ("release", "h+l"), ("baseline-release", "g")),
        ("headline", "GRL (the recipe rule) − Baseline (the rule)", ("grl-rule", "h+l"), ("baseline-rule", "g")),
        ("headline", "GRL (the recipe rule) − GRL (paper mode)", ("grl-rule", "h+l"), ("grl", "h+l")),
        ("H2 backbone", "GRL's own F^g − Baseline's F^g", ("grl", "g"), ("baseline", "g")),
        ("H2 backbone", "GRL (release)'s own F^g − Baseline's F^g", ("release", "g"), ("baseline", "g")),
        ("H2 backbone", "GRL's F^h − Baseline's F^g", ("grl", "h"), ("baseline", "g")),
        ("H2 backbone", "GRL's F^l − Baseline's F^g", ("grl", "l"), ("baseline", "g")),
        (
            "H2 backbone",
            "GRL on the Baseline's frozen backbone − Baseline",
            ("grl-on-frozen-baseline", "h+l"),
            ("baseline", "g"),
        ),
        (
            "H2 backbone",
            "GRL trained on from the Baseline's backbone − Baseline",
            ("grl-from-baseline", "h+l"),
            ("baseline", "g"),
        ),
        ("H2 backbone", "its own F^g − Baseline's F^g", ("grl-from-baseline", "g"), ("baseline", "g")),
        ("H3 losses", "video-level OIM off (oim=f) − GRL", ("grl-f-oim", "h+l"), ("grl", "h+l")),
        ("H3 losses", "frame-level OIM off (oim=v) − GRL", ("grl-v-oim", "h+l"), ("grl", "h+l")),
        ("H3 losses", "verification off − GRL", ("grl-no-verification", "h+l"), ("grl", "h+l")),
    ]
    for arm in sorted(arms):
        if arm.startswith("grl+"):
            out.append(("H1 recipe: field on in paper mode", f"{arm} − GRL", (arm, "h+l"), ("grl", "h+l")))
        if arm.startswith("release-") and arm != "release":
            out.append(("H1 recipe: field off in the release", f"{arm} − release", (arm, "h+l"), ("release", "h+l")))
    tables = ("gce", "grl-no-memory", "grl-no-enhancement", "grl-T4", "grl-T6", "grl-T10", "grl-forward")
    for arm in (*tables, "grl-backward", "grl-v-oim", "grl-f-oim"):
        out.append(("Tables 3-6, the rule", f"{arm} − GRL", (f"{arm}-rule", "h+l"), ("grl-rule", "h+l")))
    out += [
        ("Tables 3-6, the rule", "gce − Baseline", ("gce-rule", "h+l"), ("baseline-rule", "g")),
        ("Twice the steps", "Baseline (rule): 1800 − 900 steps", ("baseline-rule-x2", "g"), ("baseline-rule", "g")),
        ("Twice the steps", "GRL (rule): 1800 − 900 steps", ("grl-rule-x2", "h+l"), ("grl-rule", "h+l")),
        ("Twice the steps", "GRL − Baseline at 1800 steps", ("grl-rule-x2", "h+l"), ("baseline-rule-x2", "g")),
        (
            "Four times the steps",
            "Baseline (rule): 3600 − 1800 steps",
            ("baseline-rule-x4", "g"),
            ("baseline-rule-x2", "g"),
        ),
        ("Four times the steps", "GRL (rule): 3600 − 1800 steps", ("grl-rule-x4", "h+l"), ("grl-rule-x2", "h+l")),
        ("Four times the steps", "GRL − Baseline at 3600 steps", ("grl-rule-x4", "h+l"), ("baseline-rule-x4", "g")),
        ("H4 resolution", "GRL − Baseline at 128x64", ("grl-128x64", "h+l"), ("baseline-128x64", "g")),
        (
            "H7 schedule",
            "Baseline (rule): cosine 1800 − step 3600",
            ("baseline-rule-cos-x2", "g"),
            ("baseline-rule-x4", "g"),
        ),
        ("H7 schedule", "GRL (rule): cosine 1800 − step 3600", ("grl-rule-cos-x2", "h+l"), ("grl-rule-x4", "h+l")),
        (
            "H7 schedule",
            "Baseline (rule): cosine 3600 − cosine 1800",
            ("baseline-rule-cos-x4", "g"),
            ("baseline-rule-cos-x2", "g"),
        ),
        (
            "H7 schedule",
            "GRL (rule): cosine 3600 − cosine 1800",
            ("grl-rule-cos-x4", "h+l"),
            ("grl-rule-cos-x2", "h+l"),
        ),
        ("H7 schedule", "GRL − Baseline, cosine 1800", ("grl-rule-cos-x2", "h+l"), ("baseline-rule-cos-x2", "g")),
    ]
    lengths = (("x2", "1800"), ("x4", "3600"), ("x8", "7200"), ("x16", "14,400"))
    for (short, short_steps), (long, long_steps) in zip(lengths, lengths[1:]):  # the doubling rule on cameras 1.5
        for arm, name, feature in (("baseline", "Baseline", "g"), ("grl", "GRL", "h+l")):
            out.append(
                (
                    "Recalibrated data (cameras 1.5)",
                    f"{name} (rule): {long_steps} − {short_steps} steps",
                    (f"{arm}-rule-{long}-cameras1.5", feature),
                    (f"{arm}-rule-{short}-cameras1.5", feature),
                )
            )
    return out


def small_comparisons(arms: set[str]) -> list[tuple[str, str, tuple, tuple]]:
    """The small sets' comparisons (Rank-1, their headline metric), under the recipe rule."""
    out = []
    for arm in ("gce", "grl"):
        if f"{arm}-rule" in arms:
            out.append(("small sets, the rule", f"{arm} − Baseline", (f"{arm}-rule", "h+l"), ("baseline-rule", "g")))
    for arm in ("baseline", "gce", "grl"):  # the small sets' length (docs/convergence.md): each arm's doubling
        feature = "g" if arm == "baseline" else "h+l"
        for longer, shorter, label in (("rule", "rule-half", "300 − 150"), ("rule-x2", "rule", "600 − 300")):
            if f"{arm}-{longer}" in arms and f"{arm}-{shorter}" in arms:
                out.append(
                    (
                        "small sets, the length",
                        f"{arm} (rule): {label} steps",
                        (f"{arm}-{longer}", feature),
                        (f"{arm}-{shorter}", feature),
                    )
                )
    return out


def comparison_table(final: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for dataset in sorted(final["dataset"].unique()):
        arms = set(final.loc[final["dataset"] == dataset, "arm"])
        todo, metric = (comparisons(arms), "mAP") if dataset == "mars" else (small_comparisons(arms), "rank1")
        for family, label, (arm, feat), (ref, ref_feat) in todo:
            a, b = _samples(final, dataset, arm, feat, metric), _samples(final, dataset, ref, ref_feat, metric)
            if not set(a) & set(b):
                continue
            test = paired_test(a, b)
            rows.append(
                {
                    "dataset": DATASET_NAMES[dataset],
                    "family": family,
                    "comparison": label,
                    "metric": metric,
                    "n": test.interval.n,
                    "mean": test.interval.mean,
                    "low": test.interval.low,
                    "high": test.interval.high,
                    "p": test.p_value,
                    "mde": test.mde,
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_holm"] = math.nan
    for _, index in table.groupby(["dataset", "family"]).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p"])
    return table


def resolution_interaction(final: pd.DataFrame) -> dict | None:
    """H4: (GRL − Baseline at 128x64) − (GRL − Baseline at 64x32), paired by seed."""
    parts = [_samples(final, "mars", a, main_feature(a)) for a in ("grl-128x64", "baseline-128x64", "grl", "baseline")]
    seeds = set.intersection(*(set(p) for p in parts)) if all(parts) else set()
    if not seeds:
        return None
    values = [parts[0][k] - parts[1][k] - parts[2][k] + parts[3][k] for k in sorted(seeds)]
    iv = t_interval(values)
    return {"n": iv.n, "mean": iv.mean, "low": iv.low, "high": iv.high}


def arm_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Per arm: the last epoch's mean with its 95 % interval (main feature and, for GRL arms, F^g), the flattening
    check, the seeds it rests on and its training cost."""
    final = finals(curves)
    rows = []
    for (dataset, arm), runs in final.groupby(["dataset", "arm"]):
        feature = main_feature(arm)
        values = runs[f"mAP_{feature}"].dropna()
        iv = t_interval(values)
        g = t_interval(runs["mAP_g"].dropna()) if feature != "g" and "mAP_g" in runs else None
        at = curves[(curves["dataset"] == dataset) & (curves["arm"] == arm) & curves["finished"]]
        last = at[at["epoch"] == at["epochs"]]
        before = at[at["epoch"] == at["epochs"].map(lambda e: round(e * FLAT_FROM[dataset]))]
        map_change = last[f"mAP_{feature}"].mean() - before[f"mAP_{feature}"].mean()
        rank1_change = last[f"rank1_{feature}"].mean() - before[f"rank1_{feature}"].mean()
        loss_change = last["loss"].mean() / before["loss"].mean() - 1
        flat = abs(map_change) <= FLAT_MAP_POINTS and abs(loss_change) <= FLAT_LOSS_FRACTION
        rows.append(
            {
                "dataset": DATASET_NAMES[dataset],
                "arm": arm,
                "feature": feature,
                "runs": len(values),
                "mAP": iv.text(),
                "rank1": t_interval(runs[f"rank1_{feature}"].dropna()).text(),
                "F^g mAP": g.text() if g is not None else "",
                "mAP change, last part": round(float(map_change), 2),
                "Rank-1 change": round(float(rank1_change), 2),
                "loss change": f"{100 * loss_change:+.1f} %",
                "flattened": "yes" if flat else "NO",
                "minutes per run": round(float(runs["wall_time_s"].mean()) / 60, 1),
            }
        )
    return pd.DataFrame(rows)


def _fmt(row) -> str:
    if math.isnan(row["low"]):
        return f"{row['mean']:+.1f} (one seed)"
    return f"{row['mean']:+.1f} [{row['low']:+.1f}, {row['high']:+.1f}]"


def write_outputs(curves: pd.DataFrame, root: Path) -> None:
    from grl.utils import atomic_write_bytes

    root = Path(root)
    atomic_write_bytes(root / "curves.csv", curves.to_csv(index=False).encode())
    final = finals(curves)
    lines = ["# Convergence runs", "", "Generated by `python -m grl.bench.convergence`; read docs/convergence.md.", ""]
    if not final.empty:
        arms = arm_table(curves)
        lines += [
            "## Every arm at its last epoch (mean ± 95 % half-width over runs)",
            "",
            arms.to_markdown(index=False),
        ]
        comp = comparison_table(final)
        if not comp.empty:
            comp = comp.assign(
                **{
                    "difference [95 % CI]": comp.apply(_fmt, axis=1),
                    "p (Holm)": comp["p_holm"].map(lambda p: "" if math.isnan(p) else f"{p:.3f}"),
                    "smallest detectable": comp["mde"].map(lambda m: "" if math.isnan(m) else f"{m:.1f}"),
                }
            )
            cols = ["dataset", "family", "comparison", "metric", "n", "difference [95 % CI]", "p (Holm)"]
            cols.append("smallest detectable")
            lines += ["", "## Paired comparisons (points, last epoch, paired by seed and split)", ""]
            lines.append(comp[cols].to_markdown(index=False))
        h4 = resolution_interaction(final)
        if h4:
            lines += ["", f"H4: (GRL − Baseline at 128x64) − (GRL − Baseline at 64x32) = {_fmt(h4)} (n = {h4['n']})"]
        hours = final["wall_time_s"].sum() / 3600
        lines += ["", f"Cost: {len(final)} finished runs, {hours:.1f} core-hours of training and evaluation."]
    atomic_write_bytes(root / "convergence.md", ("\n".join(lines) + "\n").encode())
    _figure(curves, root / "curves.png")


RULE_REFS = ("baseline-rule", "grl-rule")
PANELS = (
    ("MARS-like: references", lambda a: a in ("baseline", "grl", "release", "baseline-release", *RULE_REFS)),
    ("MARS-like: one release field on, paper mode", lambda a: a.startswith("grl+") or a in ("grl", "release")),
    ("MARS-like: one field off, release recipe", lambda a: a.startswith("release")),
    ("MARS-like: on the Baseline's backbone", lambda a: a in ("baseline", "grl") or a.endswith("-baseline")),
    ("MARS-like: losses off", lambda a: a in ("grl", "grl-v-oim", "grl-f-oim", "grl-no-verification")),
    (
        "MARS-like: Tables 3-4 arms, the rule",
        lambda a: a in RULE_REFS or (a.endswith("-rule") and a.startswith(("gce-", "grl-T", "grl-no-"))),
    ),
    (
        "MARS-like: Tables 5-6 arms, the rule",
        lambda a: a == "grl-rule" or a.startswith(("grl-forward", "grl-backward")) or a.endswith("oim-rule"),
    ),
    ("MARS-like: 900 / 1800 / 3600 steps, the rule (cos: cosine schedule)", lambda a: a.startswith(RULE_REFS)),
    ("MARS-like: 128x64", lambda a: a.endswith("128x64")),
)


def _figure(curves: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = []
    for _, r in curves.iterrows():
        feature = main_feature(r["arm"])
        value = r.get(f"mAP_{feature}", math.nan)
        if not pd.isna(value):
            long.append({"dataset": r["dataset"], "arm": r["arm"], "step": r["step"], "mAP": value})
    long = pd.DataFrame(long)
    if long.empty:
        return
    panels = []
    mars = long[long["dataset"] == "mars"]
    for title, keep in PANELS:
        part = mars[mars["arm"].map(keep)]
        if part["arm"].nunique() > 6:  # a crowded panel draws the arms with several seeds (the rest: the table)
            seeds = curves.groupby("arm")["seed"].nunique()
            part = part[part["arm"].map(lambda a: seeds.get(a, 0) > 1)]
        if part["arm"].nunique() > (1 if "128" in title else 2) or title.endswith("references"):
            panels.append((title, part))
    for ds in ("ilidsvid", "prid2011"):
        if (long["dataset"] == ds).any():
            panels.append((DATASET_NAMES[ds], long[long["dataset"] == ds]))
    panels = [(t, p) for t, p in panels if not p.empty]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (title, part) in zip(axes.flat, panels):
        sns.lineplot(data=part, x="step", y="mAP", hue="arm", errorbar="sd", marker="o", markersize=3, ax=ax)
        stop = 75 if title in (DATASET_NAMES["ilidsvid"], DATASET_NAMES["prid2011"]) else 225
        ax.axvline(stop, color="grey", linestyle=":", linewidth=1)  # where the cpu profile's runs stop
        ax.text(stop, ax.get_ylim()[0], " cpu profile\n stops here", fontsize=7, color="grey", va="bottom")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("Test mAP of the main feature against training steps (mean, band ±1 SD over seeds)", fontsize=11)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
