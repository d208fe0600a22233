"""Report assembly from fake results: paper / ours / difference, Markdown, the headline sentence."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from grl.experiments import runs_for
from grl.report import (
    assemble_tables,
    grl_vs_baseline,
    metrics_table,
    provenance,
    report_markdown,
    results_frame,
    table_markdown,
    trend_agreement,
    trend_summary,
    wide_table,
)


def fake_metrics(base: float) -> dict:
    return {"mAP": base, "rank1": base + 10, "rank5": base + 15, "rank10": base + 17, "rank20": base + 20,
            "cmc": [base] * 20}


def write_fake_results(runs, score, wall=12.0):
    """A result.json per run; ``score(experiment, dataset, feature)`` -> mAP (ranks follow)."""
    for run in runs:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        metrics = {f: fake_metrics(score(run.experiment, run.dataset, f)) for f in run.config.test_features}
        result = {"key": run.config.key(), "config": run.config.to_dict(), "metrics": metrics, "protocol": {},
                  "dataset": {}, "epochs_done": run.config.epochs, "wall_time_s": wall, "device": "cpu (2 threads)",
                  "torch": "x", "seed": run.config.seed, "commit": "abc123"}
        run.result_path.write_text(json.dumps(result))


def grl_wins(experiment, dataset, feature):
    return 60.0 if experiment == "grl" else 40.0


def test_tables_have_paper_ours_and_difference(tmp_path):
    runs = runs_for("quick", root=tmp_path)
    write_fake_results(runs, grl_wins)
    tables = assemble_tables(results_frame(runs))
    t1 = tables[1].set_index(["dataset", "metric"])
    assert t1.loc[("mars", "mAP"), "paper"] == 84.8
    assert t1.loc[("mars", "mAP"), "ours"] == 60.0
    assert t1.loc[("mars", "mAP"), "diff"] == pytest.approx(60.0 - 84.8)
    assert t1.loc[("prid2011", "rank20"), "ours"] == 80.0
    assert len(tables[1]) == 10
    t2 = tables[2]
    assert len(t2) == 7 * 6  # seven rows, two metrics on each of three datasets
    row = t2[(t2.row == "Baseline (F^g)") & (t2.dataset == "ilidsvid") & (t2.metric == "rank5")].iloc[0]
    assert (row.paper, row.ours) == (97.2, 55.0)
    assert list(tables[4].row.unique()) == ["Baseline (T=8)", "GRL (T=4)", "GRL (T=6)", "GRL (T=8)", "GRL (T=10)"]


def test_missing_runs_leave_gaps_and_splits_are_averaged(tmp_path):
    runs = runs_for("paper", only="table1", dataset="ilidsvid", root=tmp_path)
    assert len(runs) == 10
    for i, run in enumerate(runs[:4]):  # four of ten splits done, mAP 10, 20, 30, 40
        write_fake_results([run], lambda *a, i=i: 10.0 * (i + 1))
    ours = results_frame(runs)
    tables = assemble_tables(ours)
    t1 = tables[1].set_index(["dataset", "metric"])
    assert t1.loc[("ilidsvid", "rank1"), "ours"] == pytest.approx(35.0)  # mean of 20, 30, 40, 50
    assert math.isnan(t1.loc[("mars", "mAP"), "ours"])
    md = table_markdown(1, tables[1])
    assert "— / 84.8" in md and "35.0 / 90.4 (-55.4)" in md


def test_markdown_export(tmp_path):
    runs = runs_for("quick", root=tmp_path)
    write_fake_results(runs, grl_wins)
    tables = assemble_tables(results_frame(runs))
    wide = wide_table(tables[3])
    assert list(wide.index) == ["Baseline", "GRL", "- Memory Block", "- Enhancement Block"]
    assert list(wide.columns) == ["MARS mAP", "MARS Rank-1", "MARS Rank-5", "MARS Rank-20"]
    assert wide.loc["GRL", "MARS mAP"] == "60.0 / 84.8 (-24.8)"
    md = table_markdown(3, tables[3])
    assert md.startswith("**Table 3.")
    assert "| Baseline " in md and "40.0 / 81.2 (-41.2)" in md
    full = report_markdown("quick", runs)
    assert "## Tables 1-6" in full and "Table 6." in full
    assert "GRL beats the Baseline on MARS" in full
    assert "**Runs**: 18 of 18 done" in full and "abc123" in full


def test_grl_vs_baseline_sentence_both_ways(tmp_path):
    runs = runs_for("quick", root=tmp_path / "a")
    write_fake_results(runs, grl_wins)
    sentence = grl_vs_baseline(results_frame(runs))
    assert sentence.startswith("On our data GRL beats the Baseline on MARS (mAP 60.0 vs 40.0, Rank-1 70.0 vs 50.0)")
    assert "NOT" not in sentence

    runs = runs_for("quick", root=tmp_path / "b")
    write_fake_results(runs, lambda e, d, f: 30.0 if e == "grl" else 45.0)
    sentence = grl_vs_baseline(results_frame(runs))
    assert "GRL does NOT beat the Baseline on MARS (mAP 30.0 vs 45.0" in sentence
    assert "beats the Baseline on" not in sentence.replace("NOT beat", "")


def test_grl_vs_baseline_mixed_and_missing():
    def frame(grl_map, grl_r1, base_map, base_r1):
        rows = [("grl", "h+l", "mAP", grl_map), ("grl", "h+l", "rank1", grl_r1),
                ("baseline", "g", "mAP", base_map), ("baseline", "g", "rank1", base_r1)]
        return pd.DataFrame([{"experiment": e, "dataset": "prid2011", "split": 0, "feature": f, "metric": m,
                              "value": v} for e, f, m, v in rows])

    assert "mixed" in grl_vs_baseline(frame(50, 40, 45, 45)) and "PRID2011" in grl_vs_baseline(frame(50, 40, 45, 45))
    assert "cannot be said" in grl_vs_baseline(frame(50, 40, 45, 45).iloc[:2])
    assert "cannot be said" in grl_vs_baseline(results_frame([]))


def test_metrics_table_is_rounded_and_ordered():
    result = {"metrics": {"h+l": fake_metrics(12.3456), "l": fake_metrics(1.0), "h": fake_metrics(2.0)}}
    table = metrics_table(result)
    assert list(table.index) == ["l", "h", "h+l"]
    assert table.loc["h+l", "mAP"] == 12.3 and table.loc["h+l", "Rank-20"] == 32.3
    assert "cmc" not in table.columns


def test_provenance_states_profile_data_seeds_and_gallery(tmp_path):
    runs = runs_for("quick", only="table3", root=tmp_path)
    write_fake_results(runs[:1], grl_wins, wall=120.0)
    text = provenance("quick", runs)
    assert "`quick`" in text and "(built-in synthetic, reduced sizes)" in text and "**Seeds**: 0" in text
    assert "**Runs**: 1 of 4 done" in text and "2.0 min" in text
    assert "gallery **includes** the query tracklets" in text


def test_trend_agreement_compares_every_ablation_with_grl_by_sign():
    def table(rows):  # (row, paper, ours) on MARS mAP
        return pd.DataFrame([{"row": r, "dataset": "mars", "feature": "h+l", "metric": "mAP", "paper": p, "ours": o,
                              "diff": o - p} for r, p, o in rows])

    tables = {3: table([("Baseline", 81.2, 30.0), ("GRL", 84.8, 20.0), ("- Memory Block", 84.2, 19.0),
                        ("- Enhancement Block", 83.4, float("nan"))]),
              5: table([("GRL forward", 84.0, 25.0), ("GRL bi-direction", 84.8, 25.0)])}
    agreement = trend_agreement(tables)
    by_row = {r.row: r for r in agreement.itertuples()}
    assert set(by_row) == {"Baseline", "- Memory Block", "GRL forward"}  # no number of ours: left out
    assert by_row["Baseline"].paper_delta == -3.6 and by_row["Baseline"].ours_delta == 10.0
    assert not by_row["Baseline"].agrees  # the paper's Baseline is below GRL, ours above
    assert by_row["- Memory Block"].agrees  # both below GRL
    assert not by_row["GRL forward"].agrees  # a tie of ours does not agree with the paper's drop
    summary = trend_summary(agreement)
    assert "Table 3: 1 of 2 comparisons" in summary and "Table 5: 0 of 1" in summary
    assert "In all: 1 of 3 (33%)" in summary
    assert trend_summary(trend_agreement({})) .startswith("No ablation")
