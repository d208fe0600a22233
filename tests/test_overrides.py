"""--set KEY=VALUE and --config FILE: typed, checked, in the run's key, folder name, result.json and report."""

from __future__ import annotations

import json

import pytest

from grl.config import Config, ConfigError, coerce_field, overrides_tag, parse_overrides
from grl.experiments import make_run, runs_for, study_dir


def test_values_are_parsed_to_each_fields_type():
    got = parse_overrides(["lr=1e-4", "epochs=10", "use_memory=false", "dtype=float64", "amp=Yes", "oim_scale=30"])
    assert got == {"lr": 1e-4, "epochs": 10, "use_memory": False, "dtype": "float64", "amp": True, "oim_scale": 30.0}
    assert type(got["epochs"]) is int and type(got["oim_scale"]) is float


def test_a_yaml_file_then_set_which_wins(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("lr: 0.01\nepochs: 3\nuse_triplet: true\n")
    assert parse_overrides(["lr=0.0001"], path) == {"lr": 0.0001, "epochs": 3, "use_triplet": True}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["lrr=0.1"], r"--set lrr: unknown config field 'lrr'; did you mean 'lr'\?"),
        (["lr=fast"], r"--set lr='fast': config field 'lr' takes a number \(e.g. 0.0001\), got 'fast'"),
        (["epochs=2.5"], r"config field 'epochs' takes an integer"),
        (["use_memory=maybe"], r"config field 'use_memory' takes true or false, got 'maybe'"),
        (["seed=3"], r"'seed' is not set this way; use --seed / --seeds"),
        (["data_root=/x"], r"use --data-root"),
        (["lr"], r"--set 'lr': expected KEY=VALUE"),
    ],
)
def test_a_bad_override_names_the_key_the_value_and_what_is_allowed(items, message):
    with pytest.raises(ConfigError, match=message):
        parse_overrides(items)


def test_a_bad_config_file_names_the_file(tmp_path):
    for text, message in [
        ("- lr\n- 0.1\n", "expected a mapping of config fields"),
        ("lr: [0.1\n", "not valid YAML"),
        ("lr: fast\n", "config field 'lr' takes a number"),
    ]:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=f"--config {path}.*{message}"):
            parse_overrides([], path)
    with pytest.raises(ConfigError, match="cannot read it"):
        parse_overrides([], tmp_path / "missing.yaml")
    assert coerce_field("lr", 1) == 1.0  # YAML's integer for a float field


def test_overrides_go_into_the_key_and_the_folder_name_and_never_turn_one_row_into_another(tmp_path):
    plain = make_run("grl", "mars", "quick", root=tmp_path)
    slower = make_run("grl", "mars", "quick", root=tmp_path, overrides={"lr": 0.0001, "epochs": 3})
    assert slower.config.lr == 0.0001 and slower.config.epochs == 3 and slower.overrides == {"lr": 0.0001, "epochs": 3}
    assert slower.config.key() != plain.config.key()
    assert slower.name == f"grl-mars-split0-seed0-epochs=3,lr=0.0001-{slower.config.key()}"
    # an experiment's own fields are what make its table row: overriding them is refused, for one run or a study
    with pytest.raises(ConfigError, match=r"--set seq_len: experiment 'grl-T4' fixes seq_len=4"):
        make_run("grl-T4", "mars", "quick", root=tmp_path, overrides={"seq_len": 6})
    with pytest.raises(ConfigError, match=r"experiment 'grl-T\d+' fixes seq_len"):
        runs_for("quick", only="table4", seeds=(0,), root=tmp_path, overrides={"seq_len": 6})
    assert make_run("grl", "mars", "quick", root=tmp_path, overrides={"seq_len": 6}).config.seq_len == 6
    runs = runs_for("quick", only="table4", seeds=(0,), root=tmp_path, overrides={"lr": 0.0001})
    assert sorted({r.config.seq_len for r in runs}) == [4, 6, 8, 10] and all(r.config.lr == 0.0001 for r in runs)
    with pytest.raises(ConfigError, match="'batch_size' must be even"):
        make_run("grl", "mars", "quick", root=tmp_path, overrides={"batch_size": 7})
    # a study with overrides lives in its own folder unless told otherwise
    assert study_dir("cpu", None, {"lr": 0.0001}).name == "cpu-lr=0.0001" and study_dir("cpu", None, {}) is None
    assert study_dir("cpu", tmp_path, {"lr": 0.0001}) == tmp_path
    assert overrides_tag({}) == ""


def test_the_experiment_notebook_takes_the_overrides_as_one_parameter(tmp_path):
    from grl.batch.core import experiment_parameters, notebooks_dir
    from grl.batch.notebook import validate_parameters

    run = make_run("grl", "mars", "quick", root=tmp_path, overrides={"lr": 0.0001})
    parameters = experiment_parameters(run)
    assert parameters["overrides"] == {"lr": 0.0001}
    validate_parameters(notebooks_dir() / "experiment.ipynb", parameters)
    validate_parameters(notebooks_dir() / "report.ipynb", {"overrides": {"lr": 0.0001}})


@pytest.mark.slow
def test_train_with_set_writes_the_overrides_into_the_result_and_papermill_gives_the_same_run(tmp_path):
    from grl.__main__ import main
    from grl.batch.core import experiment_parameters, notebooks_dir
    from grl.batch.notebook import execute

    run = make_run("grl-forward", "prid2011", "quick", root=tmp_path, overrides={"epochs": 1, "lr": 0.002})
    assert main(["train", "--experiment", "grl-forward", "--profile", "quick", "--dataset", "prid2011",
                 "--set", "epochs=1", "--set", "lr=0.002", "--run-dir", str(tmp_path / "cli")]) == 0  # fmt: skip
    result = json.loads((tmp_path / "cli" / "result.json").read_text())
    assert result["overrides"] == {"epochs": 1, "lr": 0.002} and result["config"]["epochs"] == 1
    assert result["key"] == run.config.key() and result["epochs_done"] == 1
    # the batch's way: the notebook rebuilds the same run from the one parameter
    parameters = {**experiment_parameters(run), "output_dir": str(tmp_path / "nb")}
    execute(notebooks_dir() / "experiment.ipynb", tmp_path / "nb" / "experiment.ipynb", parameters)
    again = json.loads((tmp_path / "nb" / "result.json").read_text())
    assert again["key"] == result["key"] and again["overrides"] == result["overrides"]
    assert again["metrics"] == result["metrics"]  # float64, one thread: the same numbers
    assert Config.from_dict(again["config"]).lr == 0.002
