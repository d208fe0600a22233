"""``python -m grl evaluate`` and ``extract``: a trained model tested on its own, no training code run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grl.__main__ import main
from grl.experiments import make_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from grl.batch.runs import run_or_load

    run = make_run("grl-forward", "prid2011", "quick", root=tmp_path_factory.mktemp("inference"))
    return run, run_or_load(run, progress=False)


@pytest.fixture
def no_training(monkeypatch):
    from grl.engine import trainer

    def refuse(*args, **kwargs):
        raise AssertionError("evaluate / extract must not train")

    monkeypatch.setattr(trainer, "train", refuse)
    monkeypatch.setattr(trainer, "train_one_epoch", refuse)


def test_evaluate_a_run_folder_a_model_file_or_a_checkpoint_gives_the_runs_own_metrics(
    finished, tmp_path, no_training, capsys
):
    run, result = finished
    for source in (run.run_dir, run.run_dir / "model.pt", run.run_dir / "checkpoint.pt"):
        out = tmp_path / f"{source.name}.json"
        assert main(["evaluate", str(source), "--out", str(out)]) == 0
        written = json.loads(out.read_text())
        assert written["metrics"] == result["metrics"]  # float64: to the last digit
        assert written["key"] == run.config.key() and written["dataset"] == "prid2011" and written["split"] == 0
    printed = capsys.readouterr().out
    assert "| h+l " in printed and "Rank-1" in printed


def test_evaluate_on_another_dataset_and_split(finished, tmp_path, no_training):
    run, result = finished
    out = tmp_path / "ilids.json"
    assert main(["evaluate", str(run.run_dir), "--dataset", "ilidsvid", "--out", str(out)]) == 0
    other = json.loads(out.read_text())
    assert other["dataset"] == "ilidsvid" and other["data_version"].startswith("synthetic-")
    assert set(other["metrics"]) == set(result["metrics"]) and other["metrics"] != result["metrics"]
    assert main(["evaluate", str(run.run_dir), "--split", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["split"] == 1


def test_extract_writes_every_test_tracklet_and_evaluating_the_file_gives_the_same_metrics(
    finished, tmp_path, no_training
):
    from grl.data import load_config_dataset

    run, result = finished
    features = tmp_path / "features.npz"
    assert main(["extract", str(run.run_dir), "--out", str(features)]) == 0
    with np.load(features, allow_pickle=False) as npz:  # plain arrays: no pickle needed to read it
        arrays = {k: npz[k] for k in npz.files}
    data = load_config_dataset(run.config)
    rows = len(data.query) + len(data.gallery)
    assert sorted(k for k in arrays if k.startswith("feat_")) == sorted(
        f"feat_{f}" for f in result["metrics"] if "+rerank" not in f
    )
    assert all(arrays[k].shape[0] == rows for k in ("pid", "camid", "role", "feat_h+l"))
    assert list(arrays["role"]).count("query") == len(data.query)
    np.testing.assert_allclose(np.linalg.norm(arrays["feat_h+l"], axis=1), 1.0, rtol=1e-12)
    first = arrays["frame_paths"][arrays["frame_offsets"][0] : arrays["frame_offsets"][1]]
    assert list(first) == [str(f) for f in data.query[0].frames]
    assert arrays["pid"][0] == data.query[0].pid and json.loads(str(arrays["meta"]))["key"] == run.config.key()
    out = tmp_path / "again.json"
    assert main(["evaluate", str(features), "--out", str(out)]) == 0
    again = json.loads(out.read_text())["metrics"]
    assert {k: v for k, v in again.items()} == {k: v for k, v in result["metrics"].items() if "+rerank" not in k}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "{tmp}/nowhere"], "no such model file"),
        (["evaluate", "{tmp}/f.npz", "--dataset", "mars"], "a features file holds its test set"),
        (["extract", "{run}", "--out", "{tmp}/f.txt"], "a features file ends in .npz"),
        (["evaluate", "{tmp}/garbage.pt"], "is not a readable model file"),
    ],
)
def test_bad_sources_are_one_line(finished, tmp_path, capsys, args, message):
    run, _ = finished
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    (tmp_path / "f.npz").write_bytes(b"")
    args = [a.format(tmp=tmp_path, run=run.run_dir) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
