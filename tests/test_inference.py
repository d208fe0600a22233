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


@pytest.fixture(scope="module")
def baseline(finished):
    from grl.batch.runs import run_or_load

    run = make_run("baseline", "prid2011", "quick", root=finished[0].run_dir.parents[2])
    return run, run_or_load(run, progress=False)


def test_ranked_lists_rank_as_the_metrics_do_and_mark_what_the_protocol_ignores(finished, baseline):
    from grl.data import load_config_dataset
    from grl.engine.inference import IGNORED, MATCH, WRONG, ranked_lists

    (run, result), (base, _) = finished, baseline
    queries = len(load_config_dataset(run.config).query)
    # top-1 of every query: the share of matches is the run's own Rank-1 (PRID: every query has a positive)
    top1 = ranked_lists([("GRL", run.run_dir)], list(range(queries)), k=1)
    assert 100.0 * sum(r["items"][-1]["kind"] == MATCH for r in top1) / queries == pytest.approx(
        result["metrics"]["h+l"]["rank1"]
    )
    # on MARS-like data the gallery holds the queries themselves: same identity, same camera, ignored
    lists = ranked_lists([("GRL", run.run_dir), ("Baseline", base.run_dir)], [0, 3], k=4, dataset="mars")
    assert [(r["label"], r["query_index"]) for r in lists] == [("GRL", 0), ("GRL", 3), ("Baseline", 0), ("Baseline", 3)]
    assert lists[0]["query"] == lists[2]["query"] and lists[0]["feature"] == "h+l" and lists[2]["feature"] == "g"
    for r in lists:
        q = r["query"]
        assert [i["rank"] for i in r["items"] if i["kind"] != IGNORED] == [1, 2, 3, 4]
        for i in r["items"]:
            t = i["tracklet"]
            same = t.pid == q.pid
            ignored = t.pid == -1 or (same and t.camid == q.camid)
            assert i["kind"] == (IGNORED if ignored else MATCH if same else WRONG)
        distances = [i["distance"] for i in r["items"]]
        assert distances == sorted(distances)
    assert any(i["kind"] == IGNORED for r in lists for i in r["items"])


def test_visrank_draws_the_models_on_the_same_queries(finished, baseline, tmp_path, capsys):
    import matplotlib.pyplot as plt
    from PIL import Image

    from grl import viz
    from grl.engine.inference import ranked_lists

    (run, _), (base, _) = finished, baseline
    out = tmp_path / "ranked.png"
    args = ["visrank", str(run.run_dir), str(base.run_dir), "--label", "GRL", "--label", "Baseline"]
    assert main([*args, "--queries", "0,2", "--k", "3", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 400 and "2 queries x 2 models" in capsys.readouterr().out
    lists = ranked_lists([("GRL", run.run_dir), ("Baseline", base.run_dir)], [0, 2], k=3)
    fig = viz.ranked_lists(lists, frames=2)
    assert len(fig.axes) == 4 * 4  # 2 queries x 2 models rows; the query and 3 gallery tracklets each
    assert [ax.get_ylabel() for ax in fig.axes[::4]] == ["GRL", "Baseline", "GRL", "Baseline"]  # by query, then model
    first = lists[0]["items"][0]
    colour = fig.axes[1].spines["top"].get_edgecolor()
    assert colour == plt.matplotlib.colors.to_rgba("#2ca02c" if first["kind"] == "match" else "#d62728")
    plt.close(fig)
    assert main([*args, "--queries", "0,999", "--out", str(out)]) == 2
    assert "--queries [999]" in capsys.readouterr().err
