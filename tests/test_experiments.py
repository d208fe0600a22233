"""The experiment catalogue, profiles and the paper's numbers as data."""

from __future__ import annotations

import pytest

from grl.catalogue import CATALOGUE, EXPERIMENTS, select_rows
from grl.config import ConfigError
from grl.experiments import PROFILES, make_run, parse_seeds, runs_for
from grl.results import paper_results


def paper_value(table, row, dataset, metric):
    df = paper_results()
    hit = df[(df.table == table) & (df.row == row) & (df.dataset == dataset) & (df.metric == metric)]
    assert len(hit) == 1, (table, row, dataset, metric)
    return float(hit.value.iloc[0])


@pytest.mark.parametrize(
    "table,row,dataset,metric,value",
    [
        (2, "+TRL (F^h)", "ilidsvid", "rank1", 90.5),
        (3, "- Enhancement Block", "mars", "mAP", 83.4),
        (4, "GRL (T=10)", "mars", "rank5", 96.5),
        (1, "GRL (ours)", "prid2011", "rank1", 96.2),
        (6, "GRL F-OIM", "mars", "mAP", 83.5),
        (1, "GRL (ours)", "mars", "mAP", 84.8),
        (2, "Baseline (F^g)", "prid2011", "rank5", 98.7),
        (2, "+GCE (F^l+F^h)", "mars", "rank1", 90.1),
        (5, "GRL backward", "mars", "mAP", 83.7),
        (1, "MGRA [33]", "mars", "mAP", 85.9),
    ],
)
def test_paper_numbers_match_the_paper_text(table, row, dataset, metric, value):
    assert paper_value(table, row, dataset, metric) == value


def test_paper_results_columns_and_metrics():
    df = paper_results()
    assert list(df.columns) == ["table", "row", "dataset", "feature", "metric", "value"]
    assert set(df.metric) <= {"mAP", "rank1", "rank5", "rank20"}
    assert not df.duplicated(["table", "row", "dataset", "metric"]).any()
    # Table 1 prints 4 MARS + 3 iLIDS-VID + 3 PRID2011 numbers for GRL
    assert len(df[(df.table == 1) & (df.row == "GRL (ours)")]) == 10


def test_every_catalogue_row_has_a_paper_number():
    df = paper_results()
    for row in CATALOGUE:
        printed = df[(df.table == row.table) & (df.row == row.row) & (df.dataset == row.dataset)]
        if row.feature.endswith("+rerank") or row.table == 7:  # ours only: no re-ranking, no Table 7 in the paper
            assert len(printed) == 0, row
            continue
        assert len(printed), row
        assert set(printed.feature) == {row.feature}, row


def test_catalogue_covers_tables_1_to_6():
    counts = {t: sum(r.table == t for r in CATALOGUE) for t in range(1, 8)}
    # Table 1: GRL and GRL + re-ranking per dataset; Table 7 (ours): Baseline and GRL with / without pretraining
    assert counts == {1: 6, 2: 21, 3: 4, 4: 5, 5: 4, 6: 3, 7: 4}
    assert {r.experiment for r in CATALOGUE} == set(EXPERIMENTS)


def test_grl_full_mars_is_one_run_for_all_tables(tmp_path):
    rows = [r for r in CATALOGUE if r.experiment == "grl" and r.dataset == "mars"]
    assert {r.table for r in rows} == {1, 2, 3, 4, 5, 6, 7}
    runs = runs_for("quick", seeds=(0,), root=tmp_path)
    assert len(runs) == 20  # 14 MARS trainings (2 from scratch) + (GRL, Baseline, +GCE) on iLIDS-VID and PRID2011
    assert len({r.config.key() for r in runs}) == len(runs)
    assert sum(r.experiment == "grl" and r.dataset == "mars" for r in runs) == 1
    # Table 2's three +TRL test features are one trained model
    assert len(runs_for("quick", only="table2", dataset="mars", seeds=(0,), root=tmp_path)) == 3


def test_paper_profile_runs_ten_splits_on_the_small_datasets(tmp_path):
    runs = runs_for("paper", only="table1", root=tmp_path)
    assert [(r.dataset, r.split) for r in runs][:3] == [("mars", 0), ("ilidsvid", 0), ("ilidsvid", 1)]
    assert len(runs) == 21
    assert runs[0].config.backbone == "resnet50" and runs[0].config.pretrained
    assert (runs[0].config.height, runs[0].config.width, runs[0].config.epochs) == (256, 128, 50)


def test_selection_by_table_experiment_and_dataset(tmp_path):
    runs = runs_for("quick", only="table4", root=tmp_path)
    names = [r.experiment for r in runs]
    assert names == ["grl", "baseline", "grl-T4", "grl-T6", "grl-T10"] * 2  # the quick profile's seeds 0, 1
    assert [r.seed for r in runs] == [0] * 5 + [1] * 5  # a whole seed before the next
    assert [r.seed for r in runs_for("quick", only="table4", seeds=(7, 3), root=tmp_path)] == [7] * 5 + [3] * 5
    both = runs_for("quick", only="table1,table3", root=tmp_path)
    assert {(r.experiment, r.dataset) for r in both} == {
        ("grl", "mars"),
        ("grl", "ilidsvid"),
        ("grl", "prid2011"),
        ("baseline", "mars"),
        ("grl-no-memory", "mars"),
        ("grl-no-enhancement", "mars"),
    }
    assert [r.experiment for r in runs_for("quick", only="grl-T6", seeds=(0,), root=tmp_path)] == ["grl-T6"]
    assert {r.dataset for r in runs_for("quick", only="prid2011", root=tmp_path)} == {"prid2011"}
    assert {r.experiment for r in runs_for("quick", dataset="ilidsvid", root=tmp_path)} == {"grl", "baseline", "gce"}
    assert {r.table for r in select_rows("table5")} == {5}


def test_cpu_profile_trains_small_sets_on_ten_splits_and_the_first_seed_only(tmp_path):
    runs = runs_for("cpu", root=tmp_path)
    by = {}
    for r in runs:
        by.setdefault(r.dataset, set()).add((r.split, r.config.seed))
    assert by["ilidsvid"] == by["prid2011"] == {(k, 0) for k in range(10)}
    assert by["mars"] == {(0, s) for s in range(5)}
    assert all(r.config.crn for r in runs)
    steps = {r.dataset: r.config.epochs * r.config.steps_per_epoch for r in runs}
    assert steps == {"mars": 225, "ilidsvid": 75, "prid2011": 75}  # the small sets' own schedule
    # seeds given explicitly train every dataset on each of them
    assert {r.config.seed for r in runs_for("cpu", seeds=(4, 2), dataset="prid2011", root=tmp_path)} == {4, 2}
    assert parse_seeds("0-3") == (0, 1, 2, 3) and parse_seeds("0-1,5") == (0, 1, 5)


def test_profiles_state_their_seeds_and_bad_seeds_are_refused():
    assert PROFILES["cpu"].seeds == (0, 1, 2, 3, 4) and len(PROFILES["quick"].seeds) >= 1 and PROFILES["paper"].seeds
    assert parse_seeds("0,1,2") == (0, 1, 2) and parse_seeds(" 4 , 2") == (4, 2) and parse_seeds("") is None
    for bad in ("0,1,1", "-1", "a", "0,,1", "1.5", "0;1", "3-1", "0-2,1"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="distinct non-negative"):
        runs_for("quick", seeds=(0, 0))
    with pytest.raises(ConfigError, match="seed"):
        make_run("grl", "mars", "quick", seed=-1)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid profiles: quick, cpu, paper"):
        runs_for("laptop")
    with pytest.raises(ConfigError, match=r"'table8'.*table1.*table7.*grl-T4.*mars"):
        runs_for("quick", only="table1,table8")
    with pytest.raises(ConfigError, match="valid experiments:.*grl-no-memory"):
        make_run("grl-nope", "mars", "quick")
    with pytest.raises(ConfigError, match="valid datasets: mars, ilidsvid, prid2011"):
        runs_for("quick", dataset="duke")


def test_experiment_switches_and_run_dir(tmp_path):
    base = make_run("baseline", "mars", "cpu", root=tmp_path).config
    assert (base.use_gce, base.use_trl, base.oim, base.use_verification) == (False, False, "v", False)
    assert base.test_features == ("g",)
    assert make_run("grl-T10", "mars", "cpu").config.seq_len == 10
    assert make_run("grl-backward", "mars", "cpu").config.direction == "backward"
    assert make_run("grl-f-oim", "mars", "cpu").config.oim == "f"
    run = make_run("grl", "ilidsvid", "quick", split=3, seed=1, root=tmp_path)
    assert run.run_dir == tmp_path / "runs" / f"grl-ilidsvid-split3-seed1-{run.config.key()}"
    assert run.config.key() != make_run("grl", "ilidsvid", "quick", split=3, seed=2).config.key()
    assert (run.config.split, run.config.seed) == (3, 1)
    for profile in PROFILES.values():  # Table 4's T=8 row must stay the GRL-full run
        assert "seq_len" not in profile.overrides


def test_is_done_needs_the_same_configuration(tmp_path):
    run = make_run("grl", "mars", "quick", root=tmp_path)
    assert not run.is_done()
    run.run_dir.mkdir(parents=True)
    run.result_path.write_text('{"key": "somethingelse", "metrics": {}}')
    assert not run.is_done()
    run.result_path.write_text(f'{{"key": "{run.config.key()}", "metrics": {{}}}}')
    assert run.is_done()


def test_runs_on_synthetic_data_are_keyed_by_the_data_they_saw(monkeypatch):
    import grl.data.synthetic as synthetic
    from grl.experiments import PROFILES

    cpu = PROFILES["cpu"].config("grl", "mars")
    assert cpu.data_version == synthetic.data_version("mars", **synthetic.preset_sizes("full", "mars"))
    assert synthetic.data_version("mars", num_train_ids=10) != cpu.data_version
    # a new generator version is new data: the old results no longer count as done
    from grl.data.synthetic import version

    monkeypatch.setattr(version, "GENERATOR_VERSION", version.GENERATOR_VERSION + 1)
    assert PROFILES["cpu"].config("grl", "mars").key() != cpu.key()
    # real data roots carry no synthetic version
    assert PROFILES["cpu"].config("grl", "mars", data_root="/data/MARS").data_version == ""


def test_a_config_names_its_data_and_train_builds_it(tmp_path, monkeypatch):
    """A run's Config alone is enough: the built-in set of its size preset is generated on first use."""
    from grl.config import Config
    from grl.data import load_config_dataset
    from grl.data.synthetic import data_version, preset_sizes

    monkeypatch.setenv("GRL_DATA_DIR", str(tmp_path / "data"))
    config = make_run("baseline", "ilidsvid", "quick").config
    assert config.data_root == "" and config.data_size == "small"
    assert config.data_version == data_version("ilidsvid", **preset_sizes("small", "ilidsvid"))
    data = load_config_dataset(config)  # nothing generated before: it is made now
    assert str(data.root) == str(tmp_path / "data" / "synthetic-small" / "ilidsvid") and data.query and data.gallery
    assert data.frame_cache is not None and len(data.frame_cache) > 0
    stale = Config.from_dict({**config.to_dict(), "data_version": "synthetic-v1-0123456789"})
    with pytest.raises(ValueError, match="data_version 'synthetic-v1-0123456789' is not what this code generates"):
        load_config_dataset(stale)
