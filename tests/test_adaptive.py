"""Adaptive seeds (docs/study.md, "Adaptive seeds"): the stopping rule reads widths only, and the plan gives a
comparison more paired seeds until its interval meets the target or the profile's cap."""

import dataclasses
import json
import math

import pandas as pd
import pytest

from grl import experiments
from grl.batch.adaptive import is_adaptive, study_runs
from grl.results.precision import over_target


def _comparisons(mars_widths, small_widths=(), estimates=None):
    """A comparisons frame with the given half-widths: MARS-like Table 3 rows (mAP) and small-set GRL vs
    Baseline rows (Rank-1); ``estimates`` are the differences' means."""
    rows = []
    estimates = estimates or [0.0] * (len(mars_widths) + len(small_widths))
    for i, w in enumerate(mars_widths):
        rows.append(dict(table=3, row=f"row{i}", dataset="mars", metric="mAP", low=-w, high=w, n=3))
    for ds, w in small_widths:
        rows.append(dict(table=2, row="+TRL (F^l+F^h)", dataset=ds, metric="rank1", low=-w, high=w, n=10))
    frame = pd.DataFrame(rows)
    frame["ours_delta"] = estimates
    frame[["low", "high"]] = frame[["low", "high"]].add(frame.ours_delta, axis=0)
    frame["sd"] = 1.0
    return frame


def test_while_the_median_is_over_every_comparison_over_it_gets_a_seed_then_only_those_over_the_max():
    over = over_target(_comparisons([0.5, 1.2, 1.3, 2.0]))  # median 1.25 > 1.0: all above 1.0
    assert sorted(over.row) == ["row1", "row2", "row3"]
    over = over_target(_comparisons([0.5, 0.8, 1.2, 2.0]))  # median 1.0 met: only above the max target 1.5
    assert list(over.row) == ["row3"]
    assert over_target(_comparisons([0.5, 0.8, 1.2, 1.4])).empty


def test_the_small_sets_target_and_a_missing_interval_count_as_over():
    frame = _comparisons([0.5, math.nan, 0.9], [("ilidsvid", 2.1), ("prid2011", 1.9)])
    frame.loc[1, ["low", "high"]] = math.nan  # one sample: no interval
    assert sorted(zip(over_target(frame).dataset, over_target(frame).row)) == [
        ("ilidsvid", "+TRL (F^l+F^h)"),
        ("mars", "row1"),
    ]


def test_the_rule_never_reads_the_estimates():
    widths = [0.5, 1.2, 1.3, 2.0]
    a = over_target(_comparisons(widths, estimates=[0, 0, 0, 0]))
    b = over_target(_comparisons(widths, estimates=[-9, 40, 0.1, 3]))
    assert list(a.row) == list(b.row)


@pytest.fixture
def adaptive_profile(monkeypatch):
    quick = experiments.PROFILES["quick"]
    monkeypatch.setitem(
        experiments.PROFILES, "adaptive-test", dataclasses.replace(quick, name="adaptive-test", max_seeds=5)
    )
    return "adaptive-test"


def _finish(runs, value):
    """Write a result for every unfinished run: every feature's mAP and Rank-1 = value(experiment, seed)."""
    for run in runs:
        if run.is_done():
            continue
        v = value(run.experiment, run.config.seed)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        metrics = {f: {"mAP": v, "rank1": v} for f in ("g", "l", "h", "h+l")}
        (run.run_dir / "result.json").write_text(json.dumps({"key": run.config.key(), "metrics": metrics}))


def _plan(profile, root, value):
    """What the batch does: plan, train what is missing, plan again until the plan has nothing missing."""
    while True:
        runs = study_runs(profile, "table2", "mars", root=root)
        if all(r.is_done() for r in runs):
            return runs
        _finish(runs, value)


def _seeds(runs, experiment):
    return sorted(r.config.seed for r in runs if r.experiment == experiment)


def test_a_noisy_comparison_gets_paired_seeds_up_to_the_cap_and_nothing_else_does(adaptive_profile, tmp_path):
    noise = {0: 0.0, 1: 10.0, 2: 3.0, 3: 7.0, 4: 1.0}  # GRL - Baseline varies by seed: never within 1.0
    runs = _plan(adaptive_profile, tmp_path, lambda exp, seed: 50 + (noise[seed] if exp == "grl" else 0))
    assert _seeds(runs, "grl") == _seeds(runs, "baseline") == [0, 1, 2, 3, 4]  # the cap: max_seeds=5
    assert _seeds(runs, "gce") == [0, 1]  # not a headline comparison: the profile's seeds only


def test_a_precise_comparison_stops_at_the_profiles_seeds(adaptive_profile, tmp_path):
    runs = _plan(adaptive_profile, tmp_path, lambda exp, seed: 50 + seed + (2.0 if exp == "grl" else 0))
    assert _seeds(runs, "grl") == _seeds(runs, "baseline") == [0, 1]  # the same difference on both seeds: width 0


def test_seeds_given_explicitly_and_profiles_without_a_cap_are_fixed_designs(adaptive_profile):
    assert is_adaptive(adaptive_profile, None)
    assert not is_adaptive(adaptive_profile, (0, 1, 2))
    assert not is_adaptive("quick", None)


def test_the_report_says_the_seeds_were_adaptive_and_which_comparisons_stayed_over_target(adaptive_profile, tmp_path):
    from grl.results import comparisons, results_frame
    from grl.results.summary import precision_section

    noise = {0: 0.0, 1: 10.0, 2: 3.0, 3: 7.0, 4: 1.0}
    runs = _plan(adaptive_profile, tmp_path / "noisy", lambda exp, seed: 50 + (noise[seed] if exp == "grl" else 0))
    ours = results_frame(runs)
    text = precision_section(adaptive_profile, runs, ours, comparisons(ours), jobs=2)
    assert "at most 5 seeds" in text
    # GRL vs the Baseline, shown in Table 2 and (the Baseline's rows) in Tables 3-5: one pair of arms, four lines
    assert "4 comparison(s) still wider" in text and "mars +TRL (F^l+F^h) vs Baseline (F^g) (5.22, n = 5)" in text
    runs = _plan(adaptive_profile, tmp_path / "precise", lambda exp, seed: 50 + seed + (2.0 if exp == "grl" else 0))
    ours = results_frame(runs)
    assert "Every comparison reached its target." in precision_section(
        adaptive_profile, runs, ours, comparisons(ours), jobs=2
    )


def test_stopping_on_the_width_costs_some_coverage_and_a_fixed_design_keeps_it():
    from grl.stats import sequential_coverage

    fixed, drawn = sequential_coverage(1.5, target=1.0, start=3, cap=3, repeats=8000)
    assert drawn == 3 and fixed == pytest.approx(0.95, abs=0.01)  # no rounds: the t interval's own coverage
    precise, drawn = sequential_coverage(0.05, target=1.0, start=3, cap=10, repeats=8000)
    assert drawn == 3 and precise == pytest.approx(0.95, abs=0.01)  # every comparison meets the target at once
    adaptive, drawn = sequential_coverage(1.5, target=1.0, start=3, cap=10, repeats=8000)
    assert 3 < drawn < 10 and 0.88 < adaptive < 0.935  # docs/study.md: about 91 % at the worst spread


def test_the_batch_trains_round_after_round_and_reports_every_run_once(adaptive_profile, tmp_path, monkeypatch, capsys):
    from grl.batch import study
    from grl.batch.core import BatchResult

    noise = {0: 0.0, 1: 10.0, 2: 3.0, 3: 7.0, 4: 1.0}
    rounds, reported = [], []

    def train(runs, *args):
        missing = [r for r in runs if not r.is_done()]
        rounds.append(len(missing))
        _finish(missing, lambda exp, seed: 50 + (noise[seed] if exp == "grl" else 0))
        return BatchResult(done=[r.name for r in missing], skipped=[r.name for r in runs if r not in missing])

    monkeypatch.setattr(study, "_train", train)
    monkeypatch.setattr(study, "_figure4_and_report", lambda profile, out, nb, runs, *a: reported.extend(runs))
    assert study.reproduce(adaptive_profile, only="table2", dataset="mars", root=tmp_path) == 0
    assert rounds == [6, 2, 2, 2]  # 3 experiments x seeds 0-1, then GRL and the Baseline on seeds 2, 3, 4
    assert sorted(r.config.seed for r in reported if r.experiment == "grl") == [0, 1, 2, 3, 4]
    out = capsys.readouterr().out
    assert "adaptive up to 5" in out and "runs: 12 trained, 0 already done, 0 failed" in out
    rounds.clear()
    assert study.reproduce(adaptive_profile, only="table2", dataset="mars", root=tmp_path) == 0  # again: resumes
    assert rounds == [0] and "runs: 0 trained, 12 already done, 0 failed" in capsys.readouterr().out
