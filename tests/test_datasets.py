"""Dataset loaders on tiny on-disk fixtures in the real MARS / iLIDS-VID / PRID2011 layouts."""

from __future__ import annotations

import io
import json
import os
import random
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from grl.config import Config
from grl.data import (
    CorruptFrameError,
    DatasetNotFoundError,
    Tracklet,
    VideoReIDDataset,
    load_config_dataset,
    load_dataset,
    read_frame,
)

MARS_URL = "http://zheng-lab.cecs.anu.edu.au/Project/project_mars.html"
ILIDS_URL = "https://xiatian-zhu.github.io/downloads_qmul_iLIDS-VID_ReID_dataset.html"
PRID_URL = "https://www.tugraz.at/institute/icg/research/team-bischof/lrs/downloads/PRID11/"


def _image_bytes(fmt: str, size=(4, 8), mode="RGB", noise=False) -> bytes:
    if noise:
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    else:
        image = Image.new(mode, size, 120)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


JPG = _image_bytes("JPEG")
PNG = _image_bytes("PNG")


def write_frames(folder: Path, names, data: bytes = PNG) -> None:
    """Tiny valid frames; the same encoded bytes for every file keeps fixtures fast."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(data)


# ---- MARS ------------------------------------------------------------------------------------


def mars_name(pid: int, cam: int, tracklet: int, frame: int) -> str:
    pid4 = "00-1" if pid == -1 else f"{pid:04d}"  # real MARS names junk frames "00-1C..."
    return f"{pid4}C{cam}T{tracklet:04d}F{frame:03d}.jpg"


def write_mars_subset(root: Path, subset: str, tracks, empty_rows=()) -> None:
    """tracks: (pid, cam, tracklet, frame numbers in list order); empty_rows: (position, pid, cam)."""
    names, rows = [], []
    for pid, cam, tracklet, frames in tracks:
        track_names = [mars_name(pid, cam, tracklet, f) for f in frames]
        rows.append([len(names) + 1, len(names) + len(track_names), pid, cam])
        names += track_names
        for name in track_names:
            write_frames(root / f"bbox_{subset}" / name[:4], [name], JPG)
    for position, pid, cam in empty_rows:
        rows.insert(position, [5, 4, pid, cam])  # end < start: a track with no frames
    (root / "info").mkdir(parents=True, exist_ok=True)
    (root / "info" / f"{subset}_name.txt").write_text("\n".join(names) + "\n")
    scipy.io.savemat(
        root / "info" / f"tracks_{subset}_info.mat",
        {f"track_{subset}_info": np.array(rows, dtype=np.float64).reshape(-1, 4)},
    )


MARS_TRAIN = [
    (5, 1, 1, [1, 2, 3, 4]),
    (5, 2, 1, [1, 2, 3]),
    (9, 3, 2, [7, 12, 1, 10, 2, 9]),  # list order differs from frame order
]
MARS_TEST = [
    (3, 1, 1, [1, 2, 3]),  # row 1: query
    (3, 2, 1, [1, 2]),  # row 2
    (0, 4, 1, [1, 2]),  # row 3: distractor
    (-1, 1, 1, [1, 2]),  # row 4: junk
    (7, 2, 1, [1, 2]),  # row 5: query
    (7, 6, 3, [1, 2, 3, 4]),  # row 6
]


def make_mars(root: Path, train=MARS_TRAIN, test=MARS_TEST, query_idx=(1, 5), train_empty=()) -> Path:
    write_mars_subset(root, "train", train, train_empty)
    write_mars_subset(root, "test", test)
    scipy.io.savemat(root / "info" / "query_IDX.mat", {"query_IDX": np.array([query_idx], dtype=np.float64)})
    return root


def test_unknown_dataset_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="mars.*ilidsvid.*prid2011"):
        load_dataset("duke", tmp_path)


def test_mars_train_relabelled_and_cameras_zero_based(tmp_path):
    ds = load_dataset("mars", make_mars(tmp_path))
    assert isinstance(ds, VideoReIDDataset) and ds.name == "mars"
    assert [(t.pid, t.camid, len(t)) for t in ds.train] == [(0, 0, 4), (0, 1, 3), (1, 2, 6)]
    assert ds.num_train_ids == 2
    assert all(isinstance(t, Tracklet) and isinstance(t.frames, tuple) for t in ds.train)


def test_mars_frames_ordered_by_frame_number_not_list_order(tmp_path):
    ds = load_dataset("mars", make_mars(tmp_path))
    frames = ds.train[2].frames
    assert [Path(f).name for f in frames] == [mars_name(9, 3, 2, n) for n in (1, 2, 7, 9, 10, 12)]
    # The folder is the name's first four characters, and the paths point at real files.
    assert all(Path(f).parent == Path(os.path.abspath(tmp_path)) / "bbox_train" / "0009" for f in frames)
    assert all(os.path.isabs(f) and os.path.isfile(f) for t in ds.train + ds.gallery for f in t.frames)


def test_mars_query_gallery_junk_and_distractors(tmp_path):
    ds = load_dataset("mars", make_mars(tmp_path))
    assert [(t.pid, t.camid) for t in ds.query] == [(3, 0), (7, 1)]
    # Gallery includes the queries (release convention); junk dropped; distractor pid 0 kept.
    assert [(t.pid, t.camid) for t in ds.gallery] == [(3, 0), (3, 1), (0, 3), (7, 1), (7, 5)]
    assert ds.query[0] in ds.gallery and -1 not in {t.pid for t in ds.gallery}
    assert ds.protocol["gallery"] == "includes queries (authors' release)"

    ds = load_dataset("mars", tmp_path, mars_gallery_includes_queries=False)
    assert [(t.pid, t.camid) for t in ds.gallery] == [(3, 1), (0, 3), (7, 5)]
    assert ds.protocol["gallery"] == "excludes queries"


def test_mars_query_idx_selects_rows_not_order(tmp_path):
    ds = load_dataset("mars", make_mars(tmp_path, query_idx=(6, 2)))
    assert [(t.pid, t.camid, len(t)) for t in ds.query] == [(7, 5, 4), (3, 1, 2)]


def test_mars_empty_track_rows_skipped_with_one_warning(tmp_path):
    root = make_mars(tmp_path, train_empty=[(1, 5, 1), (3, 9, 2)])
    with pytest.warns(UserWarning, match="skipped 2 empty tracklet") as record:
        ds = load_dataset("mars", root)
    assert len([w for w in record if "empty" in str(w.message)]) == 1
    assert len(ds.train) == 3 and ds.protocol["empty_tracklets_skipped"] == 2


def test_mars_split_other_than_zero_is_refused(tmp_path):
    with pytest.raises(ValueError, match="MARS.*split must be 0"):
        load_dataset("mars", make_mars(tmp_path), split=1)


@pytest.mark.parametrize("missing", ["info/test_name.txt", "info/query_IDX.mat", "bbox_test"])
def test_mars_incomplete_root_names_dataset_path_layout_source(tmp_path, missing):
    make_mars(tmp_path)
    target = tmp_path / missing
    if target.is_dir():
        for f in target.rglob("*"):
            if f.is_file():
                f.unlink()
        for d in sorted(target.rglob("*"), reverse=True):
            d.rmdir()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mars", tmp_path)
    message = str(info.value)
    assert "mars" in message and str(tmp_path / missing) in message
    assert "info/tracks_test_info.mat" in message and "bbox_train/<pid4>" in message and MARS_URL in message


def test_missing_root_raises_dataset_not_found(tmp_path):
    for name, url in [("mars", MARS_URL), ("ilidsvid", ILIDS_URL), ("prid2011", PRID_URL)]:
        with pytest.raises(DatasetNotFoundError, match=name) as info:
            load_dataset(name, tmp_path / "nowhere")
        assert str(tmp_path / "nowhere") in str(info.value) and url in str(info.value)


def test_mat_without_expected_key_names_file_and_key(tmp_path):
    make_mars(tmp_path)
    scipy.io.savemat(tmp_path / "info" / "query_IDX.mat", {"queries": np.array([[1]])})
    with pytest.raises(DatasetNotFoundError, match=r"query_IDX\.mat has no key 'query_IDX'"):
        load_dataset("mars", tmp_path)
    (tmp_path / "info" / "query_IDX.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DatasetNotFoundError, match=r"query_IDX\.mat cannot be read"):
        load_dataset("mars", tmp_path)


def test_mars_name_list_not_matching_frames_is_reported(tmp_path):
    make_mars(tmp_path)
    for f in (tmp_path / "bbox_test" / "0003").iterdir():
        f.unlink()
    with pytest.raises(DatasetNotFoundError, match="0003C1T0001F001.jpg"):
        load_dataset("mars", tmp_path)


def test_mars_loading_is_fast_and_does_not_touch_every_file(tmp_path, monkeypatch):
    # 200k names in 4k tracks of 50 frames; only the name list and tables are read.
    names, rows = [], []
    for track in range(4000):
        pid, cam = 1 + track // 8, 1 + track % 6
        rows.append([len(names) + 1, len(names) + 50, pid, cam])
        names += [mars_name(pid, cam, track, f) for f in range(1, 51)]
    info = tmp_path / "info"
    info.mkdir()
    for subset in ("train", "test"):
        (info / f"{subset}_name.txt").write_text("\n".join(names))
        scipy.io.savemat(info / f"tracks_{subset}_info.mat", {f"track_{subset}_info": np.array(rows, float)})
        write_frames(tmp_path / f"bbox_{subset}" / names[0][:4], [names[0]], JPG)
    scipy.io.savemat(info / "query_IDX.mat", {"query_IDX": np.arange(1, 101, dtype=float)[None]})

    calls = {"stat": 0, "listdir": 0}
    real_stat, real_listdir = os.stat, os.listdir

    def counting_stat(*a, **k):
        calls["stat"] += 1
        return real_stat(*a, **k)

    def counting_listdir(*a, **k):
        calls["listdir"] += 1
        return real_listdir(*a, **k)

    monkeypatch.setattr(os, "stat", counting_stat)
    monkeypatch.setattr(os, "listdir", counting_listdir)
    start = time.perf_counter()
    ds = load_dataset("mars", tmp_path)
    elapsed = time.perf_counter() - start
    monkeypatch.undo()
    assert len(ds.train) == 4000 and len(ds.gallery) == 4000 and sum(map(len, ds.train)) == 200_000
    assert calls["listdir"] == 0 and calls["stat"] < 20
    assert elapsed < 3.0, f"loading 2 x 200k MARS names took {elapsed:.2f}s"


# ---- iLIDS-VID ---------------------------------------------------------------------------------

ILIDS_PERSONS = [1, 2, 5, 10, 12, 100]  # sorted folder order; ls_set indexes into it (1-based)
ILIDS_LS_SET = [[3, 1, 6, 2, 5, 4], [1, 2, 3, 4, 5, 6]]


def make_ilids(root: Path, persons=ILIDS_PERSONS, ls_set=ILIDS_LS_SET, frames=3) -> Path:
    for cam in (1, 2):
        for p in persons:
            names = [f"cam{cam}_person{p:03d}_{i:05d}.png" for i in range(1, frames + 1)]
            write_frames(root / "i-LIDS-VID" / "sequences" / f"cam{cam}" / f"person{p:03d}", names)
    split_dir = root / "train-test people splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(split_dir / "train_test_splits_ilidsvid.mat", {"ls_set": np.array(ls_set, dtype=np.float64)})
    return root


def shuffled_listdir(monkeypatch):
    """os.listdir in a scrambled order: loaders must not rely on directory order."""
    real = os.listdir

    def scrambled(path="."):
        names = real(path)
        random.Random(len(names)).shuffle(names)
        return names[::-1]

    monkeypatch.setattr(os, "listdir", scrambled)


def test_ilidsvid_test_first_convention(tmp_path, monkeypatch):
    shuffled_listdir(monkeypatch)
    ds = load_dataset("ilidsvid", make_ilids(tmp_path))
    # Row 0 = [3,1,6 | 2,5,4] into [001,002,005,010,012,100]: test = persons 5, 1, 100.
    assert sorted({t.pid for t in ds.query}) == [1, 5, 100]
    assert [(t.pid, t.camid) for t in ds.query] == [(1, 0), (5, 0), (100, 0)]
    assert [(t.pid, t.camid) for t in ds.gallery] == [(1, 1), (5, 1), (100, 1)]
    # Train: persons 2, 10, 12 from both cameras, relabelled 0..2.
    assert [(t.pid, t.camid) for t in ds.train] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert "person002" in ds.train[0].frames[0] and "cam2" in ds.train[1].frames[0]
    assert ds.protocol["ilidsvid_test"] == "first half (common)" and ds.protocol["split"] == 0


def test_ilidsvid_release_convention_swaps_halves(tmp_path):
    ds = load_dataset("ilidsvid", make_ilids(tmp_path), ilidsvid_test_first=False)
    assert [t.pid for t in ds.query] == [2, 10, 12]
    assert ds.num_train_ids == 3 and "person001" in ds.train[0].frames[0]
    assert ds.protocol["ilidsvid_test"] == "second half (release)"
    ds = load_dataset("ilidsvid", tmp_path, split=1)
    assert [t.pid for t in ds.query] == [1, 2, 5] and ds.split == 1


def test_ilidsvid_frames_ordered_numerically_whatever_the_listing(tmp_path, monkeypatch):
    make_ilids(tmp_path)
    folder = tmp_path / "i-LIDS-VID" / "sequences" / "cam1" / "person001"
    for f in folder.iterdir():
        f.unlink()
    # Different digit counts: lexicographic order would be 10, 100, 2, 9.
    write_frames(folder, [f"cam1_person001_{n}.png" for n in (9, 10, 100, 2)])
    (folder / "Thumbs.db").write_bytes(b"not a frame")
    shuffled_listdir(monkeypatch)
    ds = load_dataset("ilidsvid", tmp_path)
    assert [Path(f).name for f in ds.query[0].frames] == [f"cam1_person001_{n}.png" for n in (2, 9, 10, 100)]


def test_ilidsvid_split_out_of_range_names_file_and_count(tmp_path):
    make_ilids(tmp_path)
    with pytest.raises(ValueError, match=r"train_test_splits_ilidsvid\.mat has 2 splits"):
        load_dataset("ilidsvid", tmp_path, split=2)


def test_ilidsvid_empty_person_folder_skipped_with_warning(tmp_path):
    make_ilids(tmp_path)
    folder = tmp_path / "i-LIDS-VID" / "sequences" / "cam2" / "person005"
    for f in folder.iterdir():
        f.unlink()
    with pytest.warns(UserWarning, match="skipped 1 empty tracklet.*person005"):
        ds = load_dataset("ilidsvid", tmp_path)
    assert [t.pid for t in ds.query] == [1, 5, 100] and [t.pid for t in ds.gallery] == [1, 100]


def test_ilidsvid_missing_split_file_and_key(tmp_path):
    make_ilids(tmp_path)
    mat = tmp_path / "train-test people splits" / "train_test_splits_ilidsvid.mat"
    scipy.io.savemat(mat, {"splits": np.ones((2, 6))})
    with pytest.raises(DatasetNotFoundError, match="has no key 'ls_set'") as info:
        load_dataset("ilidsvid", tmp_path)
    assert ILIDS_URL in str(info.value) and "i-LIDS-VID/sequences/cam1" in str(info.value)
    mat.unlink()
    with pytest.raises(DatasetNotFoundError, match="missing file .*train_test_splits_ilidsvid.mat"):
        load_dataset("ilidsvid", tmp_path)


# ---- PRID2011 ----------------------------------------------------------------------------------


def make_prid(root: Path, frames_a: dict, frames_b: dict, splits=None) -> Path:
    """frames_a/b: person number -> number of frames in cam_a / cam_b."""
    for cam, counts in (("cam_a", frames_a), ("cam_b", frames_b)):
        for p, n in counts.items():
            write_frames(
                root / "prid_2011" / "multi_shot" / cam / f"person_{p:04d}", [f"{i:04d}.png" for i in range(1, n + 1)]
            )
    if splits is not None:
        (root / "splits_prid2011.json").write_text(json.dumps(splits))
    return root


PRID_SPLITS = [
    {"train": ["person_0001", "person_0003"], "test": ["person_0002", "person_0004"]},
    {"train": ["person_0002", "person_0004"], "test": ["person_0001", "person_0003"]},
]


def test_prid_community_split_file(tmp_path):
    root = make_prid(tmp_path, {p: 12 for p in range(1, 6)}, {p: 10 for p in range(1, 5)}, PRID_SPLITS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the community split gives no warning
        ds = load_dataset("prid2011", root)
    assert [(t.pid, t.camid, len(t)) for t in ds.query] == [(2, 0, 12), (4, 0, 12)]
    assert [(t.pid, t.camid, len(t)) for t in ds.gallery] == [(2, 1, 10), (4, 1, 10)]
    assert [(t.pid, t.camid) for t in ds.train] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [Path(f).name for f in ds.train[0].frames[:3]] == ["0001.png", "0002.png", "0003.png"]
    assert ds.protocol["split_source"] == "splits_prid2011.json"
    assert [t.pid for t in load_dataset("prid2011", root, split=1).query] == [1, 3]


def test_prid_split_out_of_range_names_file_and_count(tmp_path):
    root = make_prid(tmp_path, {p: 3 for p in range(1, 5)}, {p: 3 for p in range(1, 5)}, PRID_SPLITS)
    with pytest.raises(ValueError, match=r"splits_prid2011\.json has 2 splits"):
        load_dataset("prid2011", root, split=2)


def test_prid_generated_splits_follow_paper_rule_and_warn(tmp_path):
    # Persons 1-6 have 22+ frames in both cameras; 7 has 21 in cam_b; 8 exists only in cam_a.
    frames_a = {1: 22, 2: 30, 3: 22, 4: 25, 5: 40, 6: 23, 7: 30, 8: 50}
    frames_b = {1: 22, 2: 24, 3: 26, 4: 22, 5: 22, 6: 30, 7: 21}
    root = make_prid(tmp_path, frames_a, frames_b)
    with pytest.warns(UserWarning, match="not the community split"):
        ds = load_dataset("prid2011", root)
    test_ids = {t.pid for t in ds.query}
    assert len(test_ids) == 3 and ds.num_train_ids == 3 and len(ds.train) == 6
    assert {t.pid for t in ds.gallery} == test_ids and test_ids <= {1, 2, 3, 4, 5, 6}
    assert ds.protocol["split_source"] == "generated (not the community split)"
    with pytest.warns(UserWarning):
        again = load_dataset("prid2011", root)
        other = [load_dataset("prid2011", root, split=k) for k in range(1, 10)]
    assert again.query == ds.query  # deterministic
    assert len({tuple(t.pid for t in d.query) for d in [ds, *other]}) > 1  # the 10 splits differ
    with pytest.raises(ValueError, match="10 generated splits"):
        load_dataset("prid2011", root, split=10)


def test_prid_missing_camera_folder(tmp_path):
    make_prid(tmp_path, {1: 3}, {})
    with pytest.raises(DatasetNotFoundError, match="cam_b") as info:
        load_dataset("prid2011", tmp_path)
    assert PRID_URL in str(info.value) and "splits_prid2011.json" in str(info.value)


# ---- frames ------------------------------------------------------------------------------------


def test_read_frame_returns_rgb(tmp_path):
    (tmp_path / "gray.png").write_bytes(_image_bytes("PNG", mode="L"))
    image = read_frame(tmp_path / "gray.png")
    assert image.mode == "RGB" and image.size == (4, 8)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "missing"])
def test_read_frame_corrupt_names_file(tmp_path, kind):
    path = tmp_path / "0001C1T0001F001.jpg"
    if kind == "truncated":
        data = _image_bytes("JPEG", size=(64, 128), noise=True)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(CorruptFrameError, match="0001C1T0001F001.jpg"):
        read_frame(path)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "missing"])
def test_the_loaders_decoder_names_a_corrupt_file_too(tmp_path, kind):
    from grl.data import decode_frame

    path = tmp_path / "0001C1T0001F001.jpg"
    if kind == "truncated":
        data = _image_bytes("JPEG", size=(64, 128), noise=True)
        path.write_bytes(data[: len(data) // 2])  # libjpeg only warns; simplejpeg's strict mode refuses it
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(CorruptFrameError, match="0001C1T0001F001.jpg"):
        decode_frame(path)


@pytest.mark.parametrize("subsampling", [0, 2])  # chroma 4:4:4 and 4:2:0 (Pillow's default)
def test_the_loaders_decoder_gives_pillows_pixels(tmp_path, subsampling):
    """docs/benchmarks.md: simplejpeg (the real-data extra, which make installs) decodes the loader's JPEGs to
    exactly Pillow's pixels; grayscale JPEGs and PNGs too."""
    from grl.data import datasets, decode_frame

    assert datasets._simplejpeg is not None, "simplejpeg (the real-data extra) is not installed: make env"
    rng = np.random.default_rng(subsampling)
    colour = Image.fromarray(rng.integers(0, 256, (128, 64, 3), dtype=np.uint8))
    colour.save(tmp_path / "colour.jpg", quality=90, subsampling=subsampling)
    colour.convert("L").save(tmp_path / "gray.jpeg", quality=85)
    colour.save(tmp_path / "frame.png")
    for name in ("colour.jpg", "gray.jpeg", "frame.png"):
        decoded = decode_frame(tmp_path / name)
        assert decoded.dtype == np.uint8 and decoded.shape == (128, 64, 3), name
        assert np.array_equal(decoded, np.asarray(read_frame(tmp_path / name))), name


def test_grl_jpeg_decoder_pillow_turns_simplejpeg_off(tmp_path, monkeypatch):
    from grl.data import datasets, decode_frame

    Image.new("RGB", (16, 32), (10, 200, 30)).save(tmp_path / "f.jpg")
    calls = []
    monkeypatch.setattr(datasets, "_simplejpeg", type("Spy", (), {"decode_jpeg": lambda *a, **k: calls.append(1)}))
    decode_frame(tmp_path / "f.jpg")
    assert calls == [1]  # the fast decoder is the one used
    monkeypatch.setenv("GRL_JPEG_DECODER", "pillow")
    assert decode_frame(tmp_path / "f.jpg").shape == (32, 16, 3) and calls == [1]  # Pillow's, not the spy's


def test_loading_does_not_decode_frames(tmp_path):
    root = make_mars(tmp_path)
    bad = root / "bbox_train" / "0005" / mars_name(5, 1, 1, 2)
    bad.write_bytes(b"garbage")
    ds = load_dataset("mars", root)  # no decoding at load time
    assert str(bad) in ds.train[0].frames
    with pytest.raises(CorruptFrameError, match=bad.name):
        read_frame(str(bad))


# ---- summaries and config ----------------------------------------------------------------------


def test_summary_table_and_text(tmp_path):
    ds = load_dataset("mars", make_mars(tmp_path))
    table = ds.summary_table()
    assert list(table.index) == ["train", "query", "gallery"]
    assert list(table.columns) == ["ids", "tracklets", "frames", "min_frames", "mean_frames", "max_frames"]
    assert table.loc["train", "mean_frames"] == pytest.approx(4.3)
    assert table.loc["train", ["ids", "tracklets", "frames", "min_frames", "max_frames"]].tolist() == [2, 3, 13, 3, 6]
    assert table.loc["gallery", "ids"] == 3 and table.loc["gallery", "tracklets"] == 5
    text = ds.summary()
    assert "gallery" in text and "includes queries (authors' release)" in text and "mean_frames" in text
    assert json.dumps(ds.summary_dict())  # JSON-serialisable for result files


def test_load_config_dataset_passes_protocol_options(tmp_path):
    root = make_ilids(tmp_path)
    config = Config(dataset="ilidsvid", data_root=str(root), split=1, ilidsvid_test_first=False)
    ds = load_config_dataset(config)
    assert ds.split == 1 and [t.pid for t in ds.query] == [10, 12, 100]
    mars_root = make_mars(tmp_path / "mars")
    ds = load_config_dataset(Config(data_root=str(mars_root), mars_gallery_includes_queries=False))
    assert len(ds.gallery) == 3


def test_load_config_dataset_defaults_to_synthetic(tmp_path, monkeypatch):
    from grl.data import synthetic

    root = make_prid(tmp_path, {1: 3, 2: 3}, {1: 3, 2: 3}, [{"train": ["person_0001"], "test": ["person_0002"]}])
    asked = []

    def ensure(name, root=None, **sizes):
        asked.append((name, root, sizes))
        return made

    made = root
    monkeypatch.setattr(synthetic, "ensure_synthetic", ensure)
    ds = load_config_dataset(Config(dataset="prid2011", data_root="", frame_cache=False))
    assert [a[0] for a in asked] == ["prid2011"] and asked[0][1] == synthetic.default_root("prid2011", "full")
    assert asked[0][2] == synthetic.preset_sizes("full", "prid2011")
    assert ds.root == os.path.abspath(root) and [t.pid for t in ds.query] == [2]
