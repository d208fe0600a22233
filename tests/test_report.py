"""Report assembly from fake results: paper / ours / difference, Markdown, the headline sentence."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from grl.experiments import runs_for
from grl.results import (
    assemble_tables,
    compare_with_reference,
    comparisons,
    grl_vs_baseline,
    metrics_table,
    provenance,
    read_results_csv,
    report_markdown,
    results_frame,
    table_markdown,
    verdict_summary,
    wide_table,
    write_results_csv,
)


def fake_metrics(base: float) -> dict:
    return {
        "mAP": base,
        "rank1": base + 10,
        "rank5": base + 15,
        "rank10": base + 17,
        "rank20": base + 20,
        "cmc": [base] * 20,
    }


def write_fake_results(runs, score, wall=12.0):
    """A result.json per run; ``score(experiment, dataset, feature[, seed])`` -> mAP (ranks follow)."""
    import inspect

    takes_seed = len(inspect.signature(score).parameters) >= 4
    for run in runs:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        args = (run.experiment, run.dataset) + ((run.config.seed,) if takes_seed else ())
        metrics = {f: fake_metrics(score(*args[:2], f, *args[2:])) for f in run.config.test_features}
        result = {
            "key": run.config.key(),
            "config": run.config.to_dict(),
            "metrics": metrics,
            "protocol": {},
            "dataset": {},
            "epochs_done": run.config.epochs,
            "wall_time_s": wall,
            "device": "cpu (2 threads)",
            "torch": "x",
            "seed": run.config.seed,
            "commit": "abc123",
        }
        run.result_path.write_text(json.dumps(result))


def grl_wins(experiment, dataset, feature):
    return 60.0 if experiment == "grl" else 40.0


def test_tables_have_paper_ours_and_difference(tmp_path):
    runs = runs_for("quick", root=tmp_path)
    write_fake_results(runs, grl_wins)
    tables = assemble_tables(results_frame(runs))
    t1 = tables[1][tables[1].row == "GRL (ours)"].set_index(["dataset", "metric"])
    assert t1.loc[("mars", "mAP"), "paper"] == 84.8
    assert t1.loc[("mars", "mAP"), "ours"] == 60.0
    assert t1.loc[("mars", "mAP"), "diff"] == pytest.approx(60.0 - 84.8)
    assert t1.loc[("prid2011", "rank20"), "ours"] == 80.0
    assert len(tables[1]) == 20  # GRL and GRL + re-ranking (ours only: no paper number) on 10 metrics
    rerank = tables[1][tables[1].row == "GRL + re-ranking"]
    assert rerank.paper.isna().all() and rerank.ours.isna().all()  # the fake results have no re-ranked feature
    assert "| GRL + re-ranking | — / —" in table_markdown(1, tables[1])
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
    t1 = tables[1][tables[1].row == "GRL (ours)"].set_index(["dataset", "metric"])
    assert t1.loc[("ilidsvid", "rank1"), "ours"] == pytest.approx(35.0)  # mean of 20, 30, 40, 50
    assert math.isnan(t1.loc[("mars", "mAP"), "ours"])
    assert t1.loc[("ilidsvid", "rank1"), "n"] == 4  # four splits of one seed
    half = 3.182446305 * (500 / 3) ** 0.5 / 2  # t_{.975,3} * s / sqrt(4), s^2 = var(20, 30, 40, 50) = 500/3
    assert t1.loc[("ilidsvid", "rank1"), "high"] == pytest.approx(35.0 + half)
    md = table_markdown(1, tables[1])
    assert "— / 84.8" in md and f"35.0 ± {half:.1f} / 90.4 (-55.4)" in md


def test_markdown_export(tmp_path):
    runs = runs_for("quick", root=tmp_path)
    write_fake_results(runs, grl_wins)
    tables = assemble_tables(results_frame(runs))
    wide = wide_table(tables[3])
    assert list(wide.index) == ["Baseline", "GRL", "- Memory Block", "- Enhancement Block"]
    assert list(wide.columns) == ["MARS mAP", "MARS Rank-1", "MARS Rank-5", "MARS Rank-20"]
    assert wide.loc["GRL", "MARS mAP"] == "60.0 ± 0.0 / 84.8 (-24.8)"  # two seeds, the same number
    md = table_markdown(3, tables[3])
    assert md.startswith("**Table 3.")
    assert "| Baseline " in md and "40.0 ± 0.0 / 81.2 (-41.2)" in md
    full = report_markdown("quick", runs)
    assert "## Tables 1-6" in full and "Table 6." in full
    # the summaries are Markdown tables: GRL vs the Baseline per dataset and metric, with both verdicts
    assert "| MARS      | mAP      | 60.0  | 40.0       | +20.0 [+20.0, +20.0]    | 2" in full
    assert "| better    | better       |" in full and "**better**" not in full
    assert "**Runs**: 40 of 40 done" in full and "abc123" in full and "**Seeds**: 0, 1" in full
    assert "## Reproduction against a reference" in full


def test_html_tables_are_real_tables_with_verdict_shading(tmp_path):
    import re

    from grl.results import comparisons, comparisons_html, runs_table, runs_table_html, styled_table

    runs = runs_for("quick", root=tmp_path)
    write_fake_results(runs, grl_wins)
    ours = results_frame(runs)
    tables, agreement = assemble_tables(ours), comparisons(ours)
    html = styled_table(3, tables[3], agreement)
    assert html.count("<table") == 1 and "<caption>Table 3." in html
    assert html == styled_table(3, tables[3], agreement)  # deterministic: nbval compares it
    assert "white-space: nowrap" in html  # no cell wraps mid-word
    assert "60.0 ± 0.0 / 84.8 (-24.8)" in html
    # a comparison's verdict shades its cell: the rows that agree with the paper are green
    agree = agreement[(agreement.table == 3) & (agreement.verdict == "agrees")]
    assert len(agree) and "background-color: #d9f2d9" in html
    assert "background-color" not in styled_table(1, tables[1], agreement).split("</style>")[0].split("caption")[-1]
    # Table 1's ten columns (three datasets) would be wider than a page: one table per dataset instead
    table1 = styled_table(1, tables[1], agreement)
    assert table1.count("<table") == 3 and "Table 1." in table1 and "— PRID2011</caption>" in table1
    assert all(len(t.split('<th class="col_heading')) - 1 <= 6 for t in table1.split("<table")[1:])
    appendix = comparisons_html(agreement)
    assert appendix.startswith("<details><summary>Every comparison") and appendix.count("<tr") == len(agreement) + 1
    narrow = runs_table_html(runs)
    assert re.search(r"<th[^>]*>feature</th>", narrow) and re.search(r"<th[^>]*>mAP</th>", narrow)
    assert narrow.count("<tr") == len(runs) + 1
    # one metric column for every run whatever its feature: no column empty for most runs (no "nan" cells)
    listed = runs_table(runs)
    assert list(listed.columns) == ["experiment", "dataset", "seed", "split", "status", "minutes", "feature", "mAP"]
    assert not listed.isna().any().any() and set(listed.feature) >= {"g", "h+l"}


def test_grl_vs_baseline_is_a_paired_interval_per_dataset(tmp_path):
    runs = runs_for("quick", root=tmp_path / "a", seeds=(0, 1, 2))
    # GRL is 5 + seed above the Baseline, whose level moves a lot with the seed: paired differences 5, 6, 7.
    write_fake_results(runs, lambda e, d, f, seed: 30.0 + 10 * seed + (5 + seed if e == "grl" else 0))
    sentence = grl_vs_baseline(results_frame(runs))
    half = 4.302652730 * 1 / 3**0.5
    assert (
        f"- MARS: mAP 46.0 vs 40.0, difference +6.0 [{6 - half:+.1f}, {6 + half:+.1f}] over 3 samples: **better**"
        in sentence
    )
    assert "worse" not in sentence and "**no conclusion**" not in sentence

    runs = runs_for("quick", root=tmp_path / "b", seeds=(0, 1, 2))
    write_fake_results(runs, lambda e, d, f, seed: 45.0 + seed - (3 + seed / 10 if e == "grl" else 0))
    assert "**worse**" in grl_vs_baseline(results_frame(runs))


def test_grl_vs_baseline_inconclusive_and_missing():
    def frame(grl, base):  # per seed on PRID2011, mAP and Rank-1 equal
        rows = [("grl", "h+l", g, s) for s, g in enumerate(grl)] + [("baseline", "g", b, s) for s, b in enumerate(base)]
        return pd.DataFrame(
            [
                {"experiment": e, "dataset": "prid2011", "split": 0, "seed": s, "feature": f, "metric": m, "value": v}
                for e, f, v, s in rows
                for m in ("mAP", "rank1")
            ]
        )

    text = grl_vs_baseline(frame([50, 40, 60], [45, 45, 45]))  # differences +5, -5, +15
    assert "PRID2011" in text and "**no conclusion**" in text
    assert "no interval from one sample" in grl_vs_baseline(frame([50], [45]))
    assert "cannot be said" in grl_vs_baseline(frame([50], []))
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
    assert "`quick`" in text and "(built-in synthetic, small)" in text and "**Seeds**: 0, 1" in text
    assert "**Runs**: 1 of 8 done" in text and "2.0 min" in text
    assert "gallery **includes** the query tracklets" in text
    assert f"generator version mars {runs[0].config.data_version}" in text
    assert "**Report built**: 20" in text and "torch" in text and "float64" in text


def long_frame(values):  # {(experiment, feature): [per-seed MARS mAP]} -> results frame
    return pd.DataFrame(
        [
            {
                "profile": "quick",
                "data_version": "v1",
                "experiment": e,
                "dataset": "mars",
                "split": 0,
                "seed": s,
                "feature": f,
                "metric": "mAP",
                "value": v,
            }
            for (e, f), vs in values.items()
            for s, v in enumerate(vs)
        ]
    )


def test_comparisons_pair_each_row_with_its_reference_row():
    ours = long_frame(
        {
            ("grl", "h+l"): [20, 22, 24],
            ("grl-no-memory", "h+l"): [18, 20, 22],  # always -2
            ("grl-forward", "h+l"): [25, 18, 30],  # -> differences +5, -4, +6: inconclusive
            ("baseline", "g"): [30, 32, 34],  # always +10 over GRL
            ("gce", "l"): [31, 33, 35],
        }
    )  # always +1 over the Baseline
    frame = comparisons(ours)
    by = {(r.table, r.row): r for r in frame.itertuples()}
    memory = by[(3, "- Memory Block")]
    assert (memory.vs, memory.paper_delta, memory.ours_delta, memory.n) == ("GRL", -0.6, -2.0, 3)
    assert memory.low == memory.high == -2.0 and memory.verdict == "agrees"  # the paper's drop, every seed
    assert by[(3, "Baseline")].verdict == "contradicts"  # the paper's Baseline is below GRL, ours above
    assert by[(5, "GRL forward")].verdict == "inconclusive"
    gce = by[(2, "+GCE (F^l)")]
    assert gce.vs == "Baseline (F^g)" and gce.ours_delta == 1.0 and gce.verdict == "agrees"
    assert (4, "GRL (T=4)") not in by  # no number of ours: left out
    summary = verdict_summary(frame)
    assert (
        "Table 3 (vs GRL): 1 agree, 1 contradict, 0 inconclusive (0 of them with no effect larger than δ) of 2."
        in summary
    )
    # Table 2's +TRL (F^l+F^h) and the Baseline rows of Tables 3-5 all contradict: our Baseline is above GRL.
    assert (
        "In all, of 7 comparisons, after Holm's adjustment over all 7: 2 agree, 4 contradict, 1 inconclusive" in summary
    )
    assert verdict_summary(comparisons(long_frame({}))).startswith("No row can be compared")


def test_holm_takes_back_a_verdict_one_test_alone_would_draw_and_margins_say_what_was_not_seen():
    # Six comparisons against GRL; "- Memory" is -2 with a small spread (raw p ~ 0.01): alone it agrees,
    # after Holm over the six it is inconclusive (and so is T=10's raw contradiction). T=6 is within ±1 point on every seed: no effect larger than δ.
    ours = long_frame(
        {
            ("grl", "h+l"): [20.0, 22.0, 24.0, 26.0],
            ("grl-no-memory", "h+l"): [18.5, 19.0, 22.5, 24.0],
            ("grl-T6", "h+l"): [20.1, 22.0, 23.9, 26.05],
            **{(e, "h+l"): [21.0, 20.0, 26.0, 25.0] for e in ("grl-T4", "grl-forward", "grl-v-oim")},
            ("grl-T10", "h+l"): [30.0, 40.0, 30.0, 45.0],
        }
    )
    frame = comparisons(ours).set_index("row")
    memory = frame.loc["- Memory Block"]
    assert memory.verdict == "agrees" and memory.p < 0.05 and memory.p_holm >= 0.05
    assert memory.verdict_holm == "inconclusive"
    assert frame.loc["GRL (T=6)"].within_margin and frame.loc["GRL (T=6)"].margin == 1.0
    assert not memory.within_margin
    d = np.array([-1.5, -3.0, -1.5, -2.0])
    assert memory.mde == pytest.approx((stats.t.ppf(0.975, 3) + stats.t.ppf(0.8, 3)) * d.std(ddof=1) / 2)
    summary = verdict_summary(comparisons(ours))
    assert frame.loc["GRL (T=10)"].verdict == "contradicts" and frame.loc["GRL (T=10)"].verdict_holm == "inconclusive"
    assert (
        "after Holm's adjustment over all 6: 0 agree, 0 contradict, 6 inconclusive (1 of them with no effect "
        "larger than δ); before it: 1 agree, 1 contradict, 4 inconclusive" in summary
    )


def test_results_csv_round_trip_and_bad_table(tmp_path):
    ours = long_frame({("grl", "h+l"): [20.123456, 22.0], ("baseline", "g"): [30.0, 31.0]})
    path = write_results_csv(tmp_path / "results.csv", ours)
    back = read_results_csv(path)
    assert back.experiment.tolist() == ["baseline", "baseline", "grl", "grl"]  # sorted rows, one per number
    assert back[back.experiment == "grl"].value.round(6).tolist() == [20.123456, 22.0]
    assert back.data_version.tolist() == ["v1"] * 4
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"bad.csv: not a results table .*missing columns"):
        read_results_csv(tmp_path / "bad.csv")


def test_compare_with_reference():
    reference = long_frame({("grl", "h+l"): [20, 22, 24], ("baseline", "g"): [30, 32, 34]})
    ok, summary, cells = compare_with_reference(reference.assign(value=reference.value + 0.5), reference)
    assert ok and "2 cells in common: in 2 (100 %) the difference of the two means lies within its Welch" in summary
    assert "in 2 (100 %) each mean lies inside the other's 95 % interval" in summary
    # +0.5 on every seed, each side's SD 2 over 3 seeds: Welch's half-width t(0.975, 4) * sqrt(4/3 + 4/3) = 4.53
    row = cells.set_index("experiment").loc["grl"]
    assert row.difference == pytest.approx(0.5) and row.difference_high - 0.5 == pytest.approx(4.533, abs=1e-3)
    assert (
        "4 of 4 verdicts after Holm (4 before it)" in summary
    )  # GRL against the Baseline in Tables 2-5: both contradict
    assert "0 agree on one side and contradict on the other" in summary
    assert "this study: MARS mAP worse; the reference: MARS mAP worse — the same" in summary
    far = reference.assign(value=reference.value + 10 * (reference.experiment == "grl"))
    ok, summary, cells = compare_with_reference(far, reference)
    assert ok and "in 1 (50 %) each mean" in summary and "0 of 4 verdicts" in summary  # ours: a tie, inconclusive
    assert "in 1 (50 %) the difference of the two means" in summary  # +10 lies outside ±4.53
    assert cells.attrs["numbers"]["cells_difference_within_interval"] == 1
    assert "MARS mAP no conclusion; the reference: MARS mAP worse — different" in summary
    assert not cells.set_index("experiment").loc["grl", "ours_in_ref"]
    ok, summary, _ = compare_with_reference(reference.assign(data_version="v2"), reference)
    assert not ok and "Not comparable" in summary and "data-generator version" in summary
    ok, summary, _ = compare_with_reference(reference.assign(profile="cpu"), reference)
    assert not ok and "Not comparable" in summary and "profile" in summary


def test_compare_command(tmp_path, capsys):
    from grl.__main__ import main

    reference = long_frame({("grl", "h+l"): [20, 22, 24], ("baseline", "g"): [30, 32, 34]})
    study = tmp_path / "mine"
    write_results_csv(study / "results.csv", reference.assign(value=reference.value + 0.5))
    write_results_csv(tmp_path / "ref.csv", reference)
    assert main(["compare", "--profile", "quick", "--root", str(study), "--reference", str(tmp_path / "ref.csv")]) == 0
    out = capsys.readouterr().out
    assert "2 cells in common: in 2 (100 %) the difference" in out and "4 of 4 verdicts" in out
    args = ["compare", "--profile", "quick", "--root", str(study), "--reference", str(tmp_path / "ref.csv"), "--json"]
    assert main(args) == 0
    numbers = json.loads(capsys.readouterr().out)  # one JSON object, nothing else on stdout
    assert {k: numbers[k] for k in ("cells", "cells_difference_within_interval", "verdicts")} == {
        "cells": 2,
        "cells_difference_within_interval": 2,
        "verdicts": 4,
    }
    assert numbers["verdicts_equal_after_holm"] == 4 and numbers["opposite"] == 0 and numbers["headline_same"]
    write_results_csv(tmp_path / "other.csv", reference.assign(data_version="v0"))
    assert (
        main(["compare", "--profile", "quick", "--root", str(study), "--reference", str(tmp_path / "other.csv")]) == 1
    )
    assert "Not comparable" in capsys.readouterr().out
    assert main(["compare", "--profile", "quick", "--root", str(tmp_path / "none")]) == 2
    assert "results.csv does not exist: run `python -m grl reproduce" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("x\n1\n")
    assert main(["compare", "--profile", "quick", "--root", str(study), "--reference", str(tmp_path / "bad.csv")]) == 2
    assert "bad.csv: not a results table" in capsys.readouterr().err


def test_report_md_shows_the_figures_it_has(tmp_path):
    from grl.results import report_markdown, save_figures

    runs = runs_for("quick", root=tmp_path)
    write_fake_results(runs, grl_wins)
    written = save_figures(tmp_path, runs)
    assert {p.name for p in written} >= {"comparisons_overview.png"}
    assert all(p.stat().st_size > 1000 for p in written)
    md = report_markdown("quick", runs, figures_dir=tmp_path)
    assert "![Every comparison of Tables 2-6 against its table's reference row" in md
    assert "(comparisons_overview.png)" in md and "Rests on 2 seed(s) on the MARS-like set" in md
    assert "figure4_query" not in md and "(not generated: no finished GRL run on MARS)" in md  # only what exists


def test_a_failed_run_is_shown_as_failed_never_as_a_number(tmp_path):
    from grl.results import failed_runs, runs_table_html

    runs = runs_for("quick", only="table1", seeds=(0, 1), root=tmp_path)
    diverged = [r for r in runs if r.experiment == "grl" and r.dataset == "mars"]
    assert len(diverged) == 2  # both seeds of the MARS row: its cell has no number left
    one_seed = next(r for r in runs if r.experiment == "grl" and r.dataset == "prid2011" and r.config.seed == 1)
    finished = [r for r in runs if r not in diverged and r is not one_seed]
    write_fake_results(finished, grl_wins)
    status = {r.name: {"status": "done"} for r in finished}
    for r in [*diverged, one_seed]:
        status[r.name] = {"status": "failed", "error": f"TrainingDiverged: run {r.name}: training diverged"}
    (tmp_path / "status.json").write_text(json.dumps({"runs": status}))

    failed = failed_runs(runs, tmp_path / "status.json")
    assert sorted(failed) == sorted(r.name for r in [*diverged, one_seed])
    assert "training diverged" in failed[one_seed.name]
    wide = wide_table(assemble_tables(results_frame(runs), failed=failed)[1])
    assert wide.loc["GRL (ours)", "MARS mAP"].startswith("FAILED / ")
    prid = wide.loc["GRL (ours)", "PRID2011 Rank-1"]
    assert prid.startswith("70.0") and prid.endswith("; 1 run FAILED, not counted")  # the other seed's number
    assert not any("FAILED" in wide.loc["GRL (ours)", c] for c in wide.columns if c.startswith("iLIDS-VID"))
    html = runs_table_html(runs, failed=failed)
    assert html.count(">FAILED<") == 3 and html.count(">done<") == len(finished)
    # a later batch that finished them: no longer failed
    write_fake_results([*diverged, one_seed], grl_wins)
    assert failed_runs(runs, tmp_path / "status.json") == {}
    assert failed_runs(runs, tmp_path / "no-status.json") == {}


def test_a_reference_inside_the_checkout_is_named_relative_to_it(tmp_path):
    from grl.paths import project_root
    from grl.results.reference import _shown_path

    inside = project_root() / "reports" / "cpu" / "results.csv"
    assert _shown_path(inside) == "reports/cpu/results.csv"
    assert _shown_path(tmp_path / "results.csv") == str(tmp_path / "results.csv")


def test_the_calibration_check_reads_the_baselines_mean_against_its_target():
    from grl.results.document import calibration_markdown
    from grl.results.frame import calibration_check

    rows = [
        dict(profile="cpu", data_version="v", experiment="baseline", dataset="mars", split=0, seed=s, feature="g",
             metric=m, value=v)
        for s, (a, r) in enumerate([(40.0, 30.0), (50.0, 35.0), (60.0, 20.0)])
        for m, v in (("mAP", a), ("rank1", r))
    ]  # fmt: skip
    checks = {(c["dataset"], c["metric"]): c for c in calibration_check(pd.DataFrame(rows))}
    assert set(checks) == {("mars", "mAP"), ("mars", "rank1")}  # no small-set Baseline: nothing said of them
    assert checks["mars", "mAP"]["interval"].mean == pytest.approx(50.0) and checks["mars", "mAP"]["in_range"]
    assert checks["mars", "rank1"]["interval"].mean == pytest.approx(85 / 3) and not checks["mars", "rank1"]["in_range"]
    assert re.search(
        r"\| MARS +\| Rank-1 +\| 28\.3 ± [\d.]+ +\| 30-70 +\| no", calibration_markdown(pd.DataFrame(rows))
    )
