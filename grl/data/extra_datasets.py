"""DukeMTMC-VideoReID and LS-VID, the two video sets later work reports on besides MARS, in their distributed
layouts; :func:`load_dataset` (also ``grl.data.load_dataset``) reads these and the study's three (grl.data.datasets); :func:`check_data` counts a
full copy against the published figures (``python -m grl check-data``).

Neither set is in the paper's tables: they can be trained, evaluated and exported on (``--dataset``), not
reproduced against a published GRL number.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from grl.config import EXTRA_DATASETS, ConfigError
from grl.data.datasets import (
    DATASETS,
    DatasetNotFoundError,
    Tracklet,
    VideoReIDDataset,
    frame_key,
    read_frame,
    relabel,
)
from grl.data.study_sets import load_study_dataset

ALL_DATASETS = DATASETS + EXTRA_DATASETS

SOURCES = {
    "dukemtmcvidreid": "https://github.com/Yu-Wu/DukeMTMC-VideoReID (Wu et al., CVPR 2018)",
    "lsvid": "https://github.com/jli6/LS-VID (Li et al., ICCV 2019; by request to the authors)",
}
LAYOUTS = {
    "dukemtmcvidreid": """<root>/  (or <root>/DukeMTMC-VideoReID/)
  train/PPPP/TTTT/*.jpg     e.g. train/0001/0001/0001C6F0099X30823.jpg or 0001_C6_F0099_X30823.jpg
  query/PPPP/TTTT/*.jpg
  gallery/PPPP/TTTT/*.jpg   (camera: the C<n> of the file name; order: its F<n>)""",
    "lsvid": """<root>/
  info/list_sequence/list_seq_train.txt   one tracklet a line: <path prefix of its frames> <pid>
  info/list_sequence/list_seq_test.txt
  info/data/info_test.mat                 MATLAB v7.3: 'query', 1-based rows of list_seq_test.txt
  tracklet_train/..., tracklet_test/...   the frames (camera: third '_' field of the file name)""",
}


@dataclass(frozen=True)
class Published:
    """A dataset's published figures, subset -> (identities, tracklets); None where no figure is published."""

    subsets: dict
    cameras: int | None
    source: str


# Published statistics (the datasets' papers; MARS, iLIDS-VID and PRID2011 as grl.data.datasets reads them).
PUBLISHED = {
    "mars": Published({"train": (625, 8298), "query": (None, 1980), "gallery": (None, 11310)}, 6, "Zheng et al. 2016"),
    "ilidsvid": Published({"train": (150, 300), "query": (150, 150), "gallery": (150, 150)}, 2, "Wang et al. 2014"),
    "prid2011": Published(
        {"train": (89, 178), "query": (89, 89), "gallery": (89, 89)}, 2, "178 persons of > 21 frames"
    ),
    "dukemtmcvidreid": Published(
        {"train": (702, 2196), "query": (702, 702), "gallery": (1110, 2636)}, 8, "Wu et al. 2018"
    ),
    "lsvid": Published({"train": (None, None), "query": (None, None), "gallery": (None, None)}, 15, "Li et al. 2019"),
}


def load_dataset(name: str, root, split: int = 0, **protocol) -> VideoReIDDataset:
    """Load any of the five datasets: the study's three (:func:`grl.data.study_sets.load_study_dataset`), DukeMTMC-VideoReID
    and LS-VID (the loaders below). The one entry point: ``grl.data.load_dataset``."""
    if name in DATASETS:
        return load_study_dataset(name, root, split, **protocol)
    if name not in EXTRA_DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; valid names: {list(ALL_DATASETS)}")
    if split != 0:
        raise ValueError(f"split={split} for {name}: it has one fixed train/test partition, so split must be 0")
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise _not_found(name, root, f"the root folder {root} does not exist")
    return _load_duke(root) if name == "dukemtmcvidreid" else _load_lsvid(root)


def _not_found(name: str, root: str, problem: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{name} dataset not found or incomplete at {root}: {problem}.\nExpected layout:\n{LAYOUTS[name]}\n"
        f"The {name} dataset is obtained from {SOURCES[name]}."
    )


# ---- DukeMTMC-VideoReID ----------------------------------------------------------------------------------------
_DUKE_CAMERA = re.compile(r"C(\d+)")
_DUKE_FRAME = re.compile(r"F(\d+)")


def _load_duke(root: str) -> VideoReIDDataset:
    base = os.path.join(root, "DukeMTMC-VideoReID") if os.path.isdir(os.path.join(root, "DukeMTMC-VideoReID")) else root
    subsets = {}
    for subset in ("train", "query", "gallery"):
        folder = os.path.join(base, subset)
        if not os.path.isdir(folder):
            raise _not_found("dukemtmcvidreid", root, f"missing folder {folder}")
        subsets[subset] = _duke_tracklets(root, folder)
    protocol = {
        "split": 0,
        "split_source": "fixed (train/, query/, gallery/)",
        "query": "query/ (one tracklet per test identity)",
        "gallery": "gallery/ (does not hold the query tracklets; 408 distractor identities)",
    }
    return VideoReIDDataset(
        "dukemtmcvidreid", root, relabel(subsets["train"]), subsets["query"], subsets["gallery"], 0, protocol
    )


def _duke_tracklets(root: str, folder: str) -> list[Tracklet]:
    out = []
    for person in sorted(os.listdir(folder)):
        person_dir = os.path.join(folder, person)
        if not os.path.isdir(person_dir):
            continue
        if not person.isdigit():
            raise _not_found("dukemtmcvidreid", root, f"{person_dir} is not a 4-digit identity folder")
        for track in sorted(os.listdir(person_dir)):
            track_dir = os.path.join(person_dir, track)
            names = [n for n in os.listdir(track_dir) if n.lower().endswith((".jpg", ".jpeg", ".png"))]
            if not names:
                continue
            camera = _DUKE_CAMERA.search(names[0])
            if camera is None:
                raise _not_found(
                    "dukemtmcvidreid", root, f"{os.path.join(track_dir, names[0])}: no camera (C<n>) in the file name"
                )
            names.sort(key=lambda n: (int(m.group(1)) if (m := _DUKE_FRAME.search(n)) else -1, n))
            out.append(
                Tracklet(tuple(os.path.join(track_dir, n) for n in names), int(person), int(camera.group(1)) - 1)
            )
    return out


# ---- LS-VID ---------------------------------------------------------------------------------------------------
def _load_lsvid(root: str) -> VideoReIDDataset:
    lists = os.path.join(root, "info", "list_sequence")
    train_rows = _lsvid_rows(root, os.path.join(lists, "list_seq_train.txt"))
    test_rows = _lsvid_rows(root, os.path.join(lists, "list_seq_test.txt"))
    query_file = os.path.join(root, "info", "data", "info_test.mat")
    query_rows = [int(i) - 1 for i in _read_query_indices(root, query_file)]
    bad = [i + 1 for i in query_rows if not 0 <= i < len(test_rows)]
    if bad:
        raise ValueError(
            f"{query_file}: 'query' entries {bad[:5]} are outside 1..{len(test_rows)}, the test list's rows"
        )
    listing: dict[str, list[str]] = {}
    train = [t for t in (_lsvid_tracklet(root, row, listing) for row in train_rows) if t.pid != -1]
    test = [_lsvid_tracklet(root, row, listing) for row in test_rows]
    chosen = set(query_rows)
    query = [test[i] for i in query_rows if test[i].pid != -1]
    gallery = [t for i, t in enumerate(test) if i not in chosen and t.pid != -1]
    protocol = {
        "split": 0,
        "split_source": "fixed (info/list_sequence/list_seq_train.txt, list_seq_test.txt)",
        "query": "rows of info/data/info_test.mat 'query'",
        "gallery": "the other test rows",
        "junk": "pid -1 dropped",
    }
    return VideoReIDDataset("lsvid", root, relabel(train), query, gallery, 0, protocol)


def _lsvid_rows(root: str, path: str) -> list[tuple[str, int]]:
    if not os.path.isfile(path):
        raise _not_found("lsvid", root, f"missing file {path}")
    rows = []
    with open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path} line {number}: expected '<frame path prefix> <pid>', got {line.strip()!r}")
            rows.append((parts[0], int(parts[1])))
    return rows


def _read_query_indices(root: str, path: str):
    if not os.path.isfile(path):
        raise _not_found("lsvid", root, f"missing file {path}")
    import h5py

    try:
        with h5py.File(path, "r") as mat:
            if "query" not in mat:
                raise _not_found("lsvid", root, f"{path} has no dataset 'query' (found {sorted(mat)})")
            return mat["query"][()].ravel()
    except OSError as exc:  # not HDF5: perhaps saved as MATLAB v5
        import scipy.io

        try:
            return scipy.io.loadmat(path)["query"].ravel()
        except Exception:
            raise _not_found("lsvid", root, f"{path} is neither a MATLAB v7.3 nor a v5 file ({exc})") from None


def _lsvid_tracklet(root: str, row: tuple[str, int], listing: dict[str, list[str]]) -> Tracklet:
    """The frames whose path starts with the row's prefix; each folder is listed once for all its tracklets."""
    prefix, pid = row
    folder, stem = os.path.split(os.path.join(root, prefix))
    if folder not in listing:
        if not os.path.isdir(folder):
            raise _not_found("lsvid", root, f"missing folder {folder} (from {prefix})")
        listing[folder] = sorted(os.listdir(folder))
    names = [n for n in listing[folder] if n.startswith(stem) and n.lower().endswith((".jpg", ".jpeg", ".png"))]
    if not names:
        raise _not_found("lsvid", root, f"no frame starts with {os.path.join(folder, stem)}")
    fields = names[0].split("_")
    if len(fields) < 4 or not fields[2].isdigit():
        raise _not_found("lsvid", root, f"{os.path.join(folder, names[0])}: no camera in the third '_' field")
    names.sort(key=frame_key)
    return Tracklet(tuple(os.path.join(folder, n) for n in names), pid, int(fields[2]) - 1)


# ---- check-data ------------------------------------------------------------------------------------------------
def check_data(name: str, root, decode: str = "first") -> tuple[bool, str]:
    """Count a dataset copy (identities, tracklets, frames, cameras per subset) against its published figures, and
    list what is missing or unreadable. ``decode``: "first" opens each tracklet's first frame, "all" every frame,
    "none" no frame. Returns (all as published and readable, the report as text)."""
    from tqdm import tqdm

    dataset = load_dataset(name, root)
    published = PUBLISHED[name]
    lines = [f"{name} at {dataset.root} ({published.source}): measured / published"]
    ok = True
    for subset in ("train", "query", "gallery"):
        tracklets = getattr(dataset, subset)
        ids, count = len({t.pid for t in tracklets}), len(tracklets)
        frames = sum(len(t) for t in tracklets)
        want_ids, want_count = published.subsets.get(subset, (None, None))
        marks = []
        for label, got, want in (("identities", ids, want_ids), ("tracklets", count, want_count)):
            same = want is None or got == want
            ok &= same
            marks.append(f"{label} {got}" + ("" if want is None else f" / {want}" + ("" if same else "  <-- differs")))
        lines.append(f"  {subset:8s} " + ", ".join(marks) + f", frames {frames}")
    cameras = len({t.camid for subset in ("train", "query", "gallery") for t in getattr(dataset, subset)})
    same = published.cameras is None or cameras == published.cameras
    ok &= same
    lines.append(
        f"  cameras  {cameras}"
        + ("" if published.cameras is None else f" / {published.cameras}")
        + ("" if same else "  <-- differs")
    )
    unreadable = []
    if decode != "none":
        everything = [t for subset in ("train", "query", "gallery") for t in getattr(dataset, subset)]
        paths = [f for t in everything for f in (t.frames if decode == "all" else t.frames[:1])]
        for path in tqdm(paths, desc=f"reading {decode} frames", unit="frame", disable=len(paths) < 1000):
            if not os.path.isfile(path):
                unreadable.append(f"missing: {path}")
                continue
            try:
                read_frame(path)
            except OSError as exc:
                unreadable.append(str(exc))
    skipped = dataset.protocol.get("empty_tracklets_skipped", 0)
    lines.append(
        f"  frames read: {decode}; unreadable or missing: {len(unreadable)}; empty tracklets skipped: {skipped}"
    )
    lines += [f"    {u}" for u in unreadable[:50]] + (
        [f"    ... and {len(unreadable) - 50} more"] if len(unreadable) > 50 else []
    )
    ok &= not unreadable
    lines.append("  frame counts: not compared (no published figure we could confirm); the measured ones are above")
    return ok, "\n".join(lines)
