"""DukeMTMC-VideoReID and LS-VID in their real layouts, on small trees made here; ``check-data``."""

from __future__ import annotations

import io
import json
import re

import h5py
import numpy as np
import pytest
from PIL import Image

from grl.__main__ import main
from grl.config import ConfigError
from grl.data.datasets import DatasetNotFoundError
from grl.data.extra_datasets import check_data, load_dataset


def _jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 32), (value, 80, 160)).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_duke(root, underscores: bool = False):
    """train: ids 1, 2 (two cameras each); query: ids 5, 6; gallery: ids 5, 6 (other cameras) and a distractor 9.
    Frame names in either convention; files written in reverse order of their F number (listing order is arbitrary)."""
    layout = {
        "train": [(1, 1, 1), (1, 2, 3), (2, 3, 2), (2, 4, 5)],
        "query": [(5, 1, 2), (6, 2, 1)],
        "gallery": [(5, 3, 1), (6, 4, 2), (9, 5, 1)],
    }
    for subset, tracks in layout.items():
        for pid, track, cam in tracks:
            folder = root / "DukeMTMC-VideoReID" / subset / f"{pid:04d}" / f"{track:04d}"
            folder.mkdir(parents=True)
            for f in (12, 3, 7):
                name = (
                    f"{pid:04d}_C{cam}_F{f:04d}_X{30000 + f}.jpg"
                    if underscores
                    else f"{pid:04d}C{cam}F{f:04d}X{30000 + f}.jpg"
                )
                (folder / name).write_bytes(_jpeg(pid * 20))
    return root


@pytest.mark.parametrize("underscores", [False, True])
def test_duke_tracklets_cameras_frame_order_and_protocol(tmp_path, underscores):
    data = load_dataset("dukemtmcvidreid", make_duke(tmp_path, underscores))
    assert [(t.pid, t.camid) for t in data.train] == [(0, 0), (0, 2), (1, 1), (1, 4)]  # relabelled, 0-based cameras
    assert [(t.pid, t.camid) for t in data.query] == [(5, 1), (6, 0)]
    assert [(t.pid, t.camid) for t in data.gallery] == [(5, 0), (6, 1), (9, 0)]
    assert [p.rsplit("F", 1)[1][:4] for p in data.query[0].frames] == ["0003", "0007", "0012"]
    assert load_dataset("dukemtmcvidreid", tmp_path / "DukeMTMC-VideoReID").query == data.query  # either root


def make_lsvid(root, v73: bool = True):
    """train: 2 ids in cameras 1 and 3; test rows: query 1 and 3 (1-based), a junk row, gallery the rest."""
    rows = {"train": [("tracklet_train/0001/0001_01_01_", 1), ("tracklet_train/0001/0001_02_03_", 1),
                      ("tracklet_train/0002/0002_01_03_", 2), ("tracklet_train/0002/0002_02_01_", 2)],
            "test": [("tracklet_test/0010/0010_01_02_", 10), ("tracklet_test/0010/0010_02_05_", 10),
                     ("tracklet_test/0011/0011_01_05_", 11), ("tracklet_test/0011/0011_02_02_", 11),
                     ("tracklet_test/0099/0099_01_04_", -1)]}  # fmt: skip
    lists = root / "info" / "list_sequence"
    lists.mkdir(parents=True)
    for subset, entries in rows.items():
        (lists / f"list_seq_{subset}.txt").write_text("".join(f"{p} {pid}\n" for p, pid in entries))
        for prefix, pid in entries:
            folder = (root / prefix).parent
            folder.mkdir(parents=True, exist_ok=True)
            for f in (10, 2, 33):
                (folder / f"{(root / prefix).name}{f:06d}.jpg").write_bytes(_jpeg(max(pid, 0) * 10))
    (root / "info" / "data").mkdir(parents=True)
    if v73:
        with h5py.File(root / "info" / "data" / "info_test.mat", "w") as mat:
            mat["query"] = np.array([[1.0, 3.0]])
    else:
        import scipy.io

        scipy.io.savemat(root / "info" / "data" / "info_test.mat", {"query": np.array([[1.0, 3.0]])})
    return root


@pytest.mark.parametrize("v73", [True, False])
def test_lsvid_prefixes_cameras_query_file_and_junk(tmp_path, v73):
    data = load_dataset("lsvid", make_lsvid(tmp_path, v73))
    assert [(t.pid, t.camid) for t in data.train] == [(0, 0), (0, 2), (1, 2), (1, 0)]
    assert [(t.pid, t.camid) for t in data.query] == [(10, 1), (11, 4)]
    assert [(t.pid, t.camid) for t in data.gallery] == [(10, 4), (11, 1)]  # junk dropped, queries not repeated
    assert [p[-10:-4] for p in data.train[0].frames] == ["000002", "000010", "000033"]  # by frame number
    assert all(len(t.frames) == 3 for t in data.train)  # a prefix never takes another tracklet's frames


def test_a_root_that_is_not_the_dataset_fails_at_once_with_the_layout(tmp_path):
    for name, expected in (("dukemtmcvidreid", "train/PPPP/TTTT/*.jpg"), ("lsvid", "list_seq_train.txt")):
        with pytest.raises(DatasetNotFoundError, match=re.escape(expected)) as caught:
            load_dataset(name, tmp_path)
        assert str(tmp_path) in str(caught.value)
    with pytest.raises(ConfigError, match="valid names"):
        load_dataset("duke", tmp_path)


def test_check_data_compares_with_the_published_figures_and_lists_unreadable_frames(tmp_path, capsys):
    root = make_duke(tmp_path)
    bad = next((root / "DukeMTMC-VideoReID" / "gallery" / "0009").rglob("*.jpg"))
    ok, text = check_data("dukemtmcvidreid", root, decode="all")
    assert not ok and "identities 2 / 702  <-- differs" in text and "tracklets 3 / 2636  <-- differs" in text
    assert "cameras  4 / 8  <-- differs" in text and "unreadable or missing: 0" in text
    bad.write_bytes(b"not a JPEG")
    ok, text = check_data("dukemtmcvidreid", root, decode="all")
    assert f"cannot read frame {bad}" in text and "unreadable or missing: 1" in text
    assert main(["check-data", "dukemtmcvidreid", str(root), "--decode", "none"]) == 1
    assert "NOT as published" in capsys.readouterr().out


@pytest.mark.slow
def test_train_evaluate_and_extract_read_duke(tmp_path):
    root = make_duke(tmp_path / "duke")
    run_dir = tmp_path / "run"
    assert main(["train", "--experiment", "grl-forward", "--profile", "quick", "--dataset", "dukemtmcvidreid",
                 "--data-root", str(root), "--run-dir", str(run_dir), "--set", "epochs=1"]) == 0  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    assert result["dataset"]["name"] == "dukemtmcvidreid" and result["dataset"]["num_train_ids"] == 2
    assert main(["evaluate", str(run_dir), "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["metrics"] == result["metrics"]
    assert main(["extract", str(run_dir), "--out", str(tmp_path / "f.npz")]) == 0
    with np.load(tmp_path / "f.npz") as npz:
        assert list(npz["role"]).count("query") == 2 and list(npz["pid"]) == [5, 6, 5, 6, 9]
    with pytest.raises(ConfigError, match="has no built-in synthetic set"):
        from grl.data import load_config_dataset
        from grl.experiments import make_run

        load_config_dataset(make_run("grl", "lsvid", "quick").config)


def test_grl_data_load_dataset_is_the_one_entry_point_for_all_five(tmp_path):
    from grl.config import DATASETS, EXTRA_DATASETS
    from grl.data import DatasetNotFoundError, load_dataset

    assert load_dataset("dukemtmcvidreid", make_duke(tmp_path, False)).name == "dukemtmcvidreid"
    for name in (
        DATASETS + EXTRA_DATASETS
    ):  # every name is known: a missing root says where it looked, not "unknown dataset"
        with pytest.raises(DatasetNotFoundError, match=f"{name} dataset not found"):
            load_dataset(name, tmp_path / "nowhere")
