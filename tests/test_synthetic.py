"""Built-in synthetic datasets: exact on-disk layouts, determinism, idempotency, intermittent cues."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image, ImageDraw

from grl.data import synthetic as S
from grl.data.synthetic import sheet, writers

SMALL = {
    "mars": dict(
        num_train_ids=8, num_test_ids=8, min_len=4, max_len=10, num_distractors=3, num_junk=2, height=64, width=32
    ),
    "ilidsvid": dict(num_ids=10, min_len=4, max_len=10, height=64, width=32),
    "prid2011": dict(
        num_cam_a=12, num_cam_b=16, num_both=10, min_len=22, max_len=26, short_fraction=0.3, height=64, width=32
    ),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("synth")
    return {name: S.generate(name, base / name, seed=3, **SMALL[name]) for name in S.DATASETS}


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _mat(path: Path, key: str) -> np.ndarray:
    return np.asarray(scipy.io.loadmat(str(path))[key])


# ----------------------------------------------------------------------------- layouts


def test_mars_layout(roots):
    root = roots["mars"]
    pid_of_folder = {"00-1": -1}
    for subset in ("train", "test"):
        names = (root / "info" / f"{subset}_name.txt").read_text().splitlines()
        table = _mat(root / "info" / f"tracks_{subset}_info.mat", f"track_{subset}_info")
        assert table.ndim == 2 and table.shape[1] == 4 and table.dtype.kind in "fiu"
        # 1-based inclusive [start, end] rows that tile the name list, in order.
        assert table[0, 0] == 1 and table[-1, 1] == len(names)
        assert (table[1:, 0] == table[:-1, 1] + 1).all() and (table[:, 1] >= table[:, 0]).all()
        assert set(table[:, 3].astype(int)) <= set(range(1, 7))
        for start, end, pid, cam in table.astype(int):
            frames = names[start - 1 : end]
            tag = "00-1" if pid == -1 else f"{pid:04d}"
            assert all(re.fullmatch(rf"{re.escape(tag)}C{cam}T\d{{4}}F\d{{3}}\.jpg", n) for n in frames), frames
            assert [int(n[-7:-4]) for n in frames] == list(range(1, len(frames) + 1))  # frame order
            assert len({n[:11] for n in frames}) == 1  # one tracklet per row
            assert (root / f"bbox_{subset}" / tag / frames[0]).is_file()
        assert names == sorted(names)
        pids = set(table[:, 2].astype(int))
        if subset == "train":
            assert min(pids) > 0 and len(pids) == 8
            train_pids = pids
        else:
            assert {0, -1} <= pids and len(pids - {0, -1}) == 8 and not (pids & train_pids)
            test_table = table.astype(int)
    with Image.open(next((root / "bbox_train").rglob("*.jpg"))) as im:
        assert im.format == "JPEG" and im.size == (32, 64)
    assert not pid_of_folder.keys() - {p.name for p in (root / "bbox_test").iterdir()}
    query = _mat(root / "info" / "query_IDX.mat", "query_IDX").ravel().astype(int)
    assert query.min() >= 1 and query.max() <= len(test_table) and len(set(query)) == len(query)
    q = test_table[query - 1]
    assert (q[:, 2] > 0).all()
    assert len({(p, c) for _, _, p, c in q}) == len(q)  # one query per (identity, camera)
    for _, _, pid, cam in q:  # the same identity is in the gallery under another camera
        assert ((test_table[:, 2] == pid) & (test_table[:, 3] != cam)).any()
    cams_per_id = {}
    for _, _, pid, cam in test_table:
        cams_per_id.setdefault(pid, set()).add(cam)
    assert all(len(c) >= 2 for p, c in cams_per_id.items() if p > 0)


def test_ilidsvid_layout(roots):
    root = roots["ilidsvid"]
    seq = root / "i-LIDS-VID" / "sequences"
    cam1 = sorted(p.name for p in (seq / "cam1").iterdir())
    assert cam1 == sorted(p.name for p in (seq / "cam2").iterdir()) and len(cam1) == 10
    assert all(re.fullmatch(r"person\d{3}", p) for p in cam1)
    for cam in ("cam1", "cam2"):
        frames = sorted((seq / cam / cam1[0]).iterdir())
        assert all(re.fullmatch(rf"{cam}_{cam1[0]}_\d{{5}}\.png", f.name) for f in frames)
        assert 4 <= len(frames) <= 10
    ls_set = _mat(root / "train-test people splits" / "train_test_splits_ilidsvid.mat", "ls_set")
    assert ls_set.shape == (10, 10)
    for row in ls_set:
        assert sorted(row.astype(int).tolist()) == list(range(1, 11))  # 1-based permutation
    with Image.open(next(seq.rglob("*.png"))) as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (32, 64)


def test_prid_layout(roots):
    root = roots["prid2011"]
    base = root / "prid_2011" / "multi_shot"
    a = sorted(p.name for p in (base / "cam_a").iterdir())
    b = sorted(p.name for p in (base / "cam_b").iterdir())
    assert len(a) == 12 and len(b) == 16 and a == b[:12]
    assert [f.name for f in sorted((base / "cam_a" / a[0]).iterdir())][:2] == ["0001.png", "0002.png"]
    lengths = {(cam, p.name): len(list(p.iterdir())) for cam in ("cam_a", "cam_b") for p in (base / cam).iterdir()}
    assert any(n <= 21 for n in lengths.values()) and any(n > 21 for n in lengths.values())
    eligible = {
        f"person_{i:04d}"
        for i in range(1, 11)
        if min(lengths[("cam_a", f"person_{i:04d}")], lengths[("cam_b", f"person_{i:04d}")]) > 21
    }
    splits = json.loads((root / "splits_prid2011.json").read_text())
    assert len(splits) == 10
    for split in splits:
        assert not set(split["train"]) & set(split["test"])
        assert set(split["train"]) | set(split["test"]) == eligible
        assert len(split["train"]) == len(eligible) // 2


def test_prid_without_splits(tmp_path):
    root = S.generate(
        "prid2011",
        tmp_path / "p",
        num_cam_a=3,
        num_cam_b=4,
        num_both=2,
        max_len=23,
        height=32,
        width=16,
        write_splits=False,
    )
    assert not (root / "splits_prid2011.json").exists() and (root / "manifest.json").exists()


# ----------------------------------------------------------------------------- determinism and caching


def test_same_seed_same_bytes_and_other_seed_differs(roots, tmp_path):
    again = S.generate("mars", tmp_path / "again", seed=3, **SMALL["mars"])
    assert _hashes(again) == _hashes(roots["mars"])
    other = S.generate("mars", tmp_path / "other", seed=4, **SMALL["mars"])
    assert _hashes(other) != _hashes(roots["mars"])
    a = S.generate("ilidsvid", tmp_path / "ia", seed=3, **SMALL["ilidsvid"])
    assert _hashes(a) == _hashes(roots["ilidsvid"])


def test_second_call_is_skipped(roots, monkeypatch):
    root = roots["ilidsvid"]
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}

    def boom(*args, **kwargs):
        raise AssertionError("regenerated although the manifest matches")

    monkeypatch.setitem(writers.WRITERS, "ilidsvid", boom)
    assert S.generate("ilidsvid", root, seed=3, **SMALL["ilidsvid"]) == root
    assert S.ensure_synthetic("ilidsvid", root, seed=3, **SMALL["ilidsvid"]) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_manifest_mismatch_and_overwrite(tmp_path):
    root = S.generate("ilidsvid", tmp_path / "d", seed=0, num_ids=4, min_len=3, max_len=5, height=32, width=16)
    with pytest.raises(ValueError, match=re.escape(str(root))):
        S.generate("ilidsvid", root, seed=1, num_ids=4, min_len=3, max_len=5, height=32, width=16)
    with pytest.raises(ValueError, match="different synthetic dataset"):
        S.ensure_synthetic("prid2011", root)
    S.generate("ilidsvid", root, seed=1, overwrite=True, num_ids=4, min_len=3, max_len=5, height=32, width=16)
    assert S.read_manifest(root)["seed"] == 1
    assert not list(tmp_path.glob(".d.partial-*"))  # no temporary folder left behind
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=re.escape(str(foreign))):
            S.generate("mars", foreign, overwrite=overwrite, num_train_ids=2, num_test_ids=2)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_stale_generator_version_is_regenerated(tmp_path):
    sizes = dict(num_ids=3, min_len=3, max_len=5, height=32, width=16)
    root = S.generate("ilidsvid", tmp_path / "d", **sizes)
    manifest = S.read_manifest(root)
    (root / "manifest.json").write_text(json.dumps({**manifest, "version": S.GENERATOR_VERSION - 1}))
    S.ensure_synthetic("ilidsvid", root, **sizes)
    assert S.read_manifest(root)["version"] == S.GENERATOR_VERSION


def test_builtin_folder_follows_the_sizes_but_a_given_folder_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("GRL_DATA_DIR", str(tmp_path / "data"))
    small = dict(num_ids=3, min_len=3, max_len=5, height=32, width=16)
    builtin = S.default_root("ilidsvid", "small")
    S.ensure_synthetic("ilidsvid", builtin, **small)
    S.ensure_synthetic("ilidsvid", builtin, **{**small, "camera_strength": 0.5})  # e.g. a recalibrated preset
    assert S.read_manifest(builtin)["sizes"]["camera_strength"] == 0.5
    mine = S.generate("ilidsvid", tmp_path / "mine", **small)
    with pytest.raises(ValueError, match="different synthetic dataset"):
        S.ensure_synthetic("ilidsvid", mine, **{**small, "camera_strength": 0.5})


def test_camera_strength_scales_how_cameras_differ():
    from grl.data.synthetic.cameras import camera_style

    native = camera_style(0, 1, 2, (32, 16), noise=0.0)
    weak = camera_style(0, 1, 2, (32, 16), noise=0.0, strength=0.25)
    neutral = camera_style(0, 1, 2, (32, 16), noise=0.0, strength=0.0)
    assert np.allclose(neutral.scale, neutral.scale[..., :1])  # no colour cast left: channels scaled alike
    assert np.abs(weak.scale - 1).mean() < np.abs(native.scale - 1).mean()
    assert (neutral.background == 128).all() and native.background.std() > 5  # no camera-specific background
    assert weak.blur == native.blur  # the same random draws: only the departures from neutral shrink


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(root, *args):
        (root / "half.txt").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setitem(writers.WRITERS, "ilidsvid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        S.generate("ilidsvid", tmp_path / "d")
    assert not list(tmp_path.iterdir())


def test_bad_name_and_sizes():
    with pytest.raises(ValueError, match="mars, ilidsvid, prid2011"):
        S.generate("duke", "/nonexistent")
    with pytest.raises(ValueError, match="num_ids"):
        S.resolve_sizes("ilidsvid", num_people=3)
    with pytest.raises(ValueError, match="num_both"):
        S.generate("prid2011", "/nonexistent/x", num_cam_a=3, num_both=5)


# ----------------------------------------------------------------------------- rendering


def test_groups_share_outfit_but_not_fine_cues():
    people = S.make_identities(0, 1, 0, 8, 4)
    for group in (people[:4], people[4:]):
        assert len({(p.top, p.bottom, p.pattern, p.height, p.width) for p in group}) == 1
        assert len({(p.bag, p.bag_side, p.shoes, p.hat) for p in group}) == 4


def test_intermittent_cues_are_intermittent():
    style = S.camera_style(0, 1, 0, (128, 64), noise=0.0)
    base = S.make_identities(0, 1, 0, 1, 1)[0]
    person = S.Identity(**{**base.__dict__, "bag": (200, 30, 30), "hat": (20, 20, 90)})
    for k in range(20):
        frames, visible = S.render_tracklet(person, style, 12, np.random.default_rng(k))
        assert frames.shape == (12, 128, 64, 3) and frames.dtype == np.uint8
        for cue in ("bag", "hat", "shoes"):
            assert visible[cue].any() and not visible[cue].all(), (cue, visible[cue])
    no_bag = S.Identity(**{**base.__dict__, "bag": None, "hat": None})
    _, visible = S.render_tracklet(no_bag, style, 12, np.random.default_rng(0))
    assert not visible["bag"].any() and not visible["hat"].any()


def test_hidden_cue_changes_pixels():
    person = S.Identity(**{**S.make_identities(0, 1, 0, 1, 1)[0].__dict__, "bag": (200, 30, 30), "hat": (20, 20, 90)})
    images = {}
    for cue in (None, "bag", "hat", "shoes"):
        img = Image.new("RGB", (64, 128), (128, 128, 128))
        shown = {c: c == cue for c in ("bag", "hat", "shoes")}
        S.render_person(ImageDraw.Draw(img), person, 32, 124, 100, 0.3, 0.3, shown)
        images[cue] = np.asarray(img)
    for cue in ("bag", "hat", "shoes"):
        assert (images[cue] != images[None]).any(), cue


def _owner(name: str, frame: str) -> tuple[int, int]:
    """(pid, 0-based camera) of a generated frame, read off its path independently of the loader."""
    path = Path(frame)
    if name == "mars":
        pid, cam = re.fullmatch(r"(\d{4})C(\d)T\d{4}F\d{3}\.jpg", path.name).groups()
        return int(pid), int(cam) - 1
    if name == "ilidsvid":
        cam, pid = re.fullmatch(r"cam(\d)_person(\d{3})_\d{5}\.png", path.name).groups()
        return int(pid), int(cam) - 1
    assert re.fullmatch(r"\d{4}\.png", path.name)
    return int(path.parent.name.removeprefix("person_")), "ab".index(path.parent.parent.name.removeprefix("cam_"))


def test_contact_sheet_shows_each_identity_under_its_cameras(roots):
    for name in S.DATASETS:
        rows = sheet.contact_sheet_rows(roots[name], name, num_ids=2)
        image = S.contact_sheet(roots[name], name, num_ids=2, frames_per_tracklet=3)
        assert isinstance(image, Image.Image) and image.size == (
            sheet.LABEL_WIDTH + 3 * (32 + sheet.GAP),
            len(rows) * (64 + sheet.GAP),
        )
        pids = [pid for pid, _, _ in rows]
        assert len(set(pids)) == 2 and all(pids.count(pid) >= 2 for pid in pids), rows  # two ids, >= 2 cameras each
        pixels = np.asarray(image)
        for r, (pid, camid, tracklet) in enumerate(rows):
            # every frame of the row is this identity's, in this camera (as the file names say) ...
            assert {_owner(name, f) for f in tracklet.frames} == {(pid, camid)}, (name, pid, camid)
            # ... and the sheet shows those frames in the row: first, middle, last
            for c, k in enumerate((0, (len(tracklet) - 1) / 2, len(tracklet) - 1)):
                with Image.open(tracklet.frames[round(k)]) as frame:
                    expected = np.asarray(frame.convert("RGB"))
                y, x = r * (64 + sheet.GAP), sheet.LABEL_WIDTH + c * (32 + sheet.GAP)
                assert (pixels[y : y + 64, x : x + 32] == expected).all(), (name, pid, camid, c)


def test_cli(tmp_path, monkeypatch):
    monkeypatch.setitem(S.DEFAULT_SIZES, "ilidsvid", {**S.DEFAULT_SIZES["ilidsvid"], **SMALL["ilidsvid"]})
    sheet = tmp_path / "sheet.png"
    from grl.data.synthetic.cli import main

    assert main(["--dataset", "ilidsvid", "--root", str(tmp_path / "ds"), "--contact-sheet", str(sheet)]) == 0
    assert S.read_manifest(tmp_path / "ds")["name"] == "ilidsvid" and sheet.is_file()


# ----------------------------------------------------------------------------- the real loaders read them


def test_load_dataset_reads_generated(roots):
    from grl.data import load_dataset

    counts = {name: S.read_manifest(roots[name])["counts"] for name in S.DATASETS}
    mars = load_dataset("mars", str(roots["mars"]))
    c = counts["mars"]
    assert len(mars.train) == c["train_tracklets"] and mars.num_train_ids == 8
    assert len(mars.query) == c["query_tracklets"]
    assert len(mars.gallery) == c["test_tracklets"] - c["junk_tracklets"]  # release convention: queries included
    assert sum(len(t) for t in mars.train) == c["train_frames"]
    assert all(Path(f).is_file() for t in mars.query for f in t.frames)

    ilids = load_dataset("ilidsvid", str(roots["ilidsvid"]), split=0)
    assert len(ilids.train) == 10 and ilids.num_train_ids == 5
    assert len(ilids.query) == len(ilids.gallery) == 5

    prid = load_dataset("prid2011", str(roots["prid2011"]), split=0)
    test = json.loads((roots["prid2011"] / "splits_prid2011.json").read_text())[0]["test"]
    assert len(prid.query) == len(prid.gallery) == len(test)
    assert prid.num_train_ids == counts["prid2011"]["eligible"] // 2


def test_outfit_groups_cover_the_generated_pids_and_group_look_alikes(roots):
    from grl.data import load_dataset

    groups = S.outfit_groups(seed=3, **SMALL["mars"])
    data = load_dataset("mars", roots["mars"])
    test_pids = {t.pid for t in data.query + data.gallery if t.pid > 0}
    assert test_pids <= set(groups)  # every test identity has a group, and nothing else but train ids does
    assert len(groups) == data.num_train_ids + len(test_pids)
    size = S.resolve_sizes("mars", **SMALL["mars"])["group_size"]
    members: dict[int, list[int]] = {}
    for pid, g in groups.items():
        members.setdefault(g, []).append(pid)
    assert max(len(m) for m in members.values()) == size
    # one group = one outfit: the identities drawn for the test subset, in pid order, four by four
    people = dict(writers.mars_people(3, S.resolve_sizes("mars", **SMALL["mars"]))["test"])
    for m in members.values():
        if m[0] in people:
            assert len({(people[p].top, people[p].bottom, people[p].pattern) for p in m}) == 1
