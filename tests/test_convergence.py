"""The convergence benchmark's analysis on hand-made run folders: the numbers it reports follow from the runs."""

import json
import math

import pytest

from grl.bench import convergence as conv
from grl.bench import convergence_analysis as ca


def _run(root, name, maps, losses, epochs=36, g=None, feature="h+l", every=4):
    """A finished run folder whose evaluation at epoch e (every ``every`` epochs) gives maps[e // every - 1]."""
    run = root / "runs" / name
    run.mkdir(parents=True)
    lines = []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, "steps": 25, "loss": losses(epoch), "loss_video_oim": 1.0}
        if epoch % every == 0:
            value = maps[epoch // every - 1]
            record["eval"] = {feature: {"mAP": value, "rank1": value + 1}}
        lines.append(json.dumps(record))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "result.json").write_text(json.dumps({"config": {"epochs": epochs}, "wall_time_s": 600.0}))
    (run / "final_g.json").write_text(json.dumps({"key": "k", **({"g": {"mAP": g, "rank1": g}} if g else {})}))


FLAT = [40, 50, 60, 70, 75, 80, 85, 85.3, 85.5]  # epochs 4..36: +0.5 between epochs 28 and 36
RISING = [10, 20, 30, 40, 50, 60, 70, 75, 80]  # +5 between epochs 28 and 36


def test_flattening_rule_and_final_values(tmp_path):
    for seed, shift in enumerate((0.0, 1.0, 2.0)):
        _run(tmp_path, f"mars-baseline-s{seed}", [m + shift for m in FLAT], lambda e: 10.0, feature="g")
        _run(tmp_path, f"mars-grl-s{seed}", [m - shift for m in RISING], lambda e: 10.0, g=50.0 + seed)
        _run(tmp_path, f"mars-grl-v-oim-s{seed}", [m + shift for m in FLAT], lambda e: 20.0 - e / 4)
    table = ca.arm_table(ca.load_curves(tmp_path)).set_index("arm")
    assert table.loc["baseline", "flattened"] == "yes"
    assert table.loc["baseline", "mAP change, last part"] == pytest.approx(0.5)
    assert table.loc["grl", "flattened"] == "NO"  # mAP still rising by 5 points
    assert table.loc["grl-v-oim", "flattened"] == "NO"  # mAP flat, loss down (13 -> 11: -15 % over 8 epochs)
    assert table.loc["baseline", "mAP"].startswith("86.5 ± ")  # (85.5 + 86.5 + 87.5) / 3
    assert table.loc["grl", "F^g mAP"].startswith("51.0 ± ")
    assert table.loc["baseline", "runs"] == 3


def test_paired_comparisons_are_per_seed_differences_with_holm(tmp_path):
    for seed in range(3):
        _run(tmp_path, f"mars-baseline-s{seed}", [m + seed for m in FLAT], lambda e: 1.0, feature="g")
        _run(tmp_path, f"mars-grl-s{seed}", [m + 2 * seed for m in FLAT], lambda e: 1.0, g=80.0 + seed)
    final = ca.finals(ca.load_curves(tmp_path))
    comp = ca.comparison_table(final).set_index("comparison")
    row = comp.loc["GRL − Baseline"]
    # differences by seed 0, 1, 2 points: mean 1, SD 1, t(0.975, 2) = 4.303 -> half-width 4.303 / sqrt(3)
    assert row["mean"] == pytest.approx(1.0)
    assert row["high"] - row["mean"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    backbone = comp.loc["GRL's own F^g − Baseline's F^g"]
    assert backbone["mean"] == pytest.approx(-5.5)
    assert backbone["low"] == backbone["high"] == pytest.approx(-5.5)  # the same difference on every seed
    # a comparison is listed only where both of its sides have finished runs
    assert set(comp["family"]) == {"headline", "H2 backbone"}


def test_resolution_interaction_is_a_difference_of_differences(tmp_path):
    for seed in range(2):
        _run(tmp_path, f"mars-baseline-s{seed}", FLAT, lambda e: 1.0, feature="g")
        _run(tmp_path, f"mars-grl-s{seed}", [m - 10 for m in FLAT], lambda e: 1.0)
        _run(tmp_path, f"mars-baseline-128x64-s{seed}", FLAT, lambda e: 1.0, feature="g")
        _run(tmp_path, f"mars-grl-128x64-s{seed}", [m - 4 - seed for m in FLAT], lambda e: 1.0)
    h4 = ca.resolution_interaction(ca.finals(ca.load_curves(tmp_path)))
    assert h4["n"] == 2 and h4["mean"] == pytest.approx(5.5)  # (-4 - (-10)) and (-5 - (-10))


def test_unfinished_runs_draw_curves_but_give_no_final_value(tmp_path):
    _run(tmp_path, "mars-grl-s0", FLAT, lambda e: 1.0)
    (tmp_path / "runs" / "mars-grl-s0" / "result.json").unlink()
    curves = ca.load_curves(tmp_path)
    assert len(curves) == 36 and ca.finals(curves).empty


def test_planned_runs_never_select_on_the_test_set_and_switch_one_field():
    runs = dict(conv.planned_runs(("refs", "screen", "release-off"), seeds=(0, 1), fields=("oim_pooled",)))
    assert all(not values["select_best"] for values in runs.values())
    assert all(values["epochs"] == 36 and values["lr_step"] == 24 for values in runs.values())
    release, paper = runs["mars-release-s0"], runs["mars-grl-s0"]
    assert release["integration"] == "release" and paper["integration"] == "paper"
    one = runs["mars-grl+oim_pooled-s0"]
    assert [k for k in paper if paper[k] != one[k]] == ["oim_pooled"]
    off = runs["mars-release-oim_pooled-s1"]
    assert [k for k in release if release[k] != off[k] and k != "seed"] == ["oim_pooled"]
    assert "mars-grl+oim_pooled-s1" not in runs  # the screen runs seed 0 only


def test_the_reports_stopped_early_note_gives_the_curves_final_numbers(tmp_path):
    from grl.results import stopped_early_note

    for seed in range(2):
        _run(tmp_path, f"mars-baseline-s{seed}", [m + seed for m in FLAT], lambda e: 1.0, feature="g")
        _run(tmp_path, f"mars-grl-s{seed}", [m - 10 + 3 * seed for m in FLAT], lambda e: 1.0)
    ca.load_curves(tmp_path).to_csv(tmp_path / "curves.csv", index=False)
    note = stopped_early_note("cpu", tmp_path)
    assert "225 steps" in note and "Trained for 900 steps (seeds 0, 1)" in note
    assert "Baseline 86.0 ± " in note and "GRL (paper mode) 77.0 ± " in note  # (85.5 + 86.5) / 2, (75.5 + 78.5) / 2
    assert "GRL − Baseline = -9.0 [" in note and "against +3.6 in the paper" in note  # per seed -10 and -8; 84.8 - 81.2
    # the default recipe's longest runs win over paper mode's, and the length is theirs
    for seed in range(2):
        _run(tmp_path, f"mars-baseline-rule-x4-s{seed}", FLAT, lambda e: 1.0, feature="g", epochs=144, every=16)
        _run(tmp_path, f"mars-grl-rule-x4-s{seed}", [m - 1 for m in FLAT], lambda e: 1.0, epochs=144, every=16)
    ca.load_curves(tmp_path).to_csv(tmp_path / "curves.csv", index=False)
    note = stopped_early_note("cpu", tmp_path)
    assert (
        "Trained for 3600 steps" in note and "GRL (the recipe rule) 84.5" in note and "GRL − Baseline = -1.0 [" in note
    )
    assert stopped_early_note("paper", tmp_path) == ""
    assert "Trained for" not in stopped_early_note("cpu", tmp_path / "nowhere")


def test_twice_the_steps_is_judged_over_its_own_last_two_ninths_and_paired_with_900_steps(tmp_path):
    long = [40, 50, 60, 70, 80, 85, 86, 87.2, 87.0]  # epochs 8..72: epoch 56 -> 72 changes by +1.0
    for seed in range(3):
        _run(tmp_path, f"mars-grl-rule-s{seed}", [m + seed for m in FLAT], lambda e: 1.0)
        _run(tmp_path, f"mars-grl-rule-x2-s{seed}", [m + seed for m in long], lambda e: 1.0, epochs=72, every=8)
    curves = ca.load_curves(tmp_path)
    table = ca.arm_table(curves).set_index("arm")
    assert table.loc["grl-rule-x2", "mAP change, last part"] == pytest.approx(1.0)  # 87.0 - 86.0, not 85.5 - 85.3
    assert table.loc["grl-rule-x2", "flattened"] == "yes"
    comp = ca.comparison_table(ca.finals(curves)).set_index("comparison")
    assert comp.loc["GRL (rule): 1800 − 900 steps", "mean"] == pytest.approx(87.0 - 85.5)
    assert comp.loc["GRL (rule): 1800 − 900 steps", "family"] == "Twice the steps"


def test_small_sets_are_compared_by_rank1_paired_by_seed_and_split(tmp_path):
    small = [50, 60, 70, 72]  # epochs 3..12
    for seed in range(2):
        for split in range(2):
            tail = f"-s{seed}-split{split}"
            _run(tmp_path, f"ilidsvid-baseline-rule{tail}", small, lambda e: 1.0, epochs=12, every=3, feature="g")
            _run(tmp_path, f"ilidsvid-grl-rule{tail}", [m + split for m in small], lambda e: 1.0, epochs=12, every=3)
    curves = ca.load_curves(tmp_path)
    row = ca.comparison_table(ca.finals(curves)).set_index("comparison").loc["grl − Baseline"]
    assert row["metric"] == "rank1" and row["n"] == 4 and row["mean"] == pytest.approx(0.5)
    table = ca.arm_table(curves).set_index("arm")
    assert table.loc["baseline-rule", "mAP change, last part"] == pytest.approx(2.0)  # epoch 9 -> 12


def test_the_rules_arms_are_the_new_defaults_and_paper_mode_stays_pinned():
    from grl.config import RECIPES, Config
    from grl.experiments import PROFILES

    runs = dict(conv.planned_runs(("refs", "rule", "double", "quad", "tables", "small"), seeds=(0,)))
    quad = runs["mars-baseline-rule-x4-s0"]
    assert (quad["epochs"], quad["lr_step"], quad["eval_every"]) == (144, 96, 16)  # the same shape at 4x the steps
    default = PROFILES["cpu"].config("grl", "mars", seed=0).replace(**conv.COMMON, **conv.MARS_LENGTH)
    assert Config.from_dict(runs["mars-grl-rule-s0"]).key() == default.key()
    paper = runs["mars-grl-s0"]
    assert all(paper[k] == v for k, v in RECIPES["paper-text"].items())  # the runs of the first round keep their keys
    double = runs["mars-grl-rule-x2-s0"]
    assert (double["epochs"], double["lr_step"]) == (72, 48)
    assert [k for k in runs["mars-grl-rule-s0"] if runs["mars-grl-rule-s0"][k] != double[k]] == [
        "epochs",
        "lr_step",
        "eval_every",
    ]
    assert runs["mars-grl-T4-rule-s0"]["seq_len"] == 4 and runs["mars-grl-T4-rule-s0"]["erasing"] == "frame"
    assert runs["ilidsvid-gce-rule-s0-split1"]["epochs"] == 12 and runs["ilidsvid-gce-rule-s0-split1"]["split"] == 1


def test_the_small_sets_length_pairs_each_arm_with_its_own_doubling_by_rank1(tmp_path):
    runs = dict(conv.planned_runs(("small-half", "small-double"), seeds=(0,)))
    half, double = runs["prid2011-grl-rule-half-s0-split1"], runs["prid2011-grl-rule-x2-s0-split1"]
    assert (half["epochs"], half["lr_step"]) == (6, 4) and (double["epochs"], double["lr_step"]) == (24, 16)
    assert len(runs) == 2 * 3 * 2 * 2  # two lengths x three arms x two splits x two sets (seed 0)
    for seed in range(2):
        for split in range(2):
            tail = f"-s{seed}-split{split}"
            _run(tmp_path, f"prid2011-baseline-rule-half{tail}", [40, 50], lambda e: 1.0, 6, every=3, feature="g")
            _run(tmp_path, f"prid2011-baseline-rule{tail}", [50, 60 + seed], lambda e: 1.0, 12, every=6, feature="g")
            _run(tmp_path, f"prid2011-baseline-rule-x2{tail}", [60, 61], lambda e: 1.0, 24, every=12, feature="g")
    comp = ca.comparison_table(ca.finals(ca.load_curves(tmp_path))).set_index("comparison")
    # Rank-1 is mAP + 1 in these runs: the differences of Rank-1 equal those of mAP.
    assert comp.loc["baseline (rule): 300 − 150 steps", "mean"] == pytest.approx(60.5 - 50)
    assert comp.loc["baseline (rule): 600 − 300 steps", "mean"] == pytest.approx(61 - 60.5)
    assert comp.loc["baseline (rule): 600 − 300 steps", "metric"] == "rank1"
    assert comp.loc["baseline (rule): 600 − 300 steps", "n"] == 4


def test_the_next_length_doubles_7200_with_the_same_shape_on_the_kept_data(monkeypatch):
    monkeypatch.setattr(conv, "calibration_data", lambda strength: {"data_root": f"/data/cameras-{strength:g}"})
    runs = dict(conv.planned_runs(("calibrated-x16",), seeds=(0,)))
    x16 = runs["mars-baseline-rule-x16-cameras1.5-s0"]
    assert (x16["epochs"], x16["lr_step"], x16["eval_every"]) == (576, 384, 64)  # the drop at 2/3, as at 7200
    assert x16["data_root"] == "/data/cameras-1.5" and "mars-grl-rule-x16-cameras1.5-s0" in runs
