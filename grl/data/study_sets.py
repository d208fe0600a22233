"""Loaders for MARS, iLIDS-VID and PRID2011 in their distributed on-disk layouts.

:func:`load_study_dataset` turns a dataset root of the study's three sets into a
:class:`~grl.data.datasets.VideoReIDDataset`. Protocol choices that change the numbers (MARS gallery with or
without the queries, which half of an iLIDS-VID split row is the test set, where PRID2011 splits come from) are
parameters, and the ones used are recorded in ``dataset.protocol``.
"""

from __future__ import annotations

import json
import os
import random
import warnings

from grl.data.datasets import (
    DATASETS,
    LAYOUTS,
    NUM_SPLITS,
    PRID_MIN_FRAMES,
    PRID_SPLIT_SEED,
    SOURCES,
    DatasetNotFoundError,
    Tracklet,
    VideoReIDDataset,
    frame_key,
    frame_number,
    list_frames,
    list_persons,
    relabel,
)

# ---------------------------------------------------------------------------------------------
# public entry points


def load_study_dataset(
    name: str,
    root: str | os.PathLike,
    split: int = 0,
    *,
    ilidsvid_test_first: bool = True,
    mars_gallery_includes_queries: bool = True,
) -> VideoReIDDataset:
    """Load ``name`` ("mars" | "ilidsvid" | "prid2011") from ``root`` in its distributed layout.

    ``split`` selects one of the 10 iLIDS-VID / PRID2011 splits (MARS has one fixed
    partition: only 0). ``ilidsvid_test_first``: True = first half of each split row is the
    test set (Wang et al. ECCV'14, torchreid); False = the GRL authors' release.
    ``mars_gallery_includes_queries``: True = the authors' release (1980 x 11310 on MARS);
    False = the gallery excludes the query tracklets (9330).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {list(DATASETS)}")
    if isinstance(split, bool) or not isinstance(split, int):
        raise ValueError(f"split must be an int, got {split!r}")
    root_str = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root_str):
        raise _not_found(name, root_str, f"the root folder {root_str} does not exist")
    skipped: list[str] = []  # descriptions of empty tracklets, reported once per load
    if name == "mars":
        dataset = _load_mars(root_str, split, mars_gallery_includes_queries, skipped)
    elif name == "ilidsvid":
        dataset = _load_ilidsvid(root_str, split, ilidsvid_test_first, skipped)
    else:
        dataset = _load_prid(root_str, split, skipped)
    dataset.protocol["empty_tracklets_skipped"] = len(skipped)
    if skipped:
        examples = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        warnings.warn(
            f"{name} at {root_str}: skipped {len(skipped)} empty tracklet(s) without frames ({examples})", stacklevel=2
        )
    return dataset


# ---------------------------------------------------------------------------------------------
# helpers


def _not_found(name: str, root: str, problem: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{name} dataset not found or incomplete at {root}: {problem}.\n"
        f"Expected layout:\n{LAYOUTS[name]}\n"
        f"The {name} dataset is obtained from {SOURCES[name]} "
        f"(or leave data_root empty to use the built-in synthetic {name})."
    )


def _require(name: str, root: str, path: str, kind: str = "file") -> str:
    ok = os.path.isfile(path) if kind == "file" else os.path.isdir(path)
    if not ok:
        raise _not_found(name, root, f"missing {kind} {path}")
    return path


def _load_mat(name: str, root: str, path: str, key: str):
    """One array from a MATLAB v5 .mat file, with errors that name the file and the key."""
    import scipy.io

    _require(name, root, path)
    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError as error:  # MATLAB v7.3 (HDF5) files
        raise _not_found(name, root, f"{path} is not a MATLAB v5 .mat file ({error}); re-save it with -v7") from error
    except Exception as error:  # scipy raises ValueError / TypeError / OSError for garbage
        raise _not_found(
            name, root, f"{path} cannot be read as a .mat file ({type(error).__name__}: {error})"
        ) from error
    if key not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise _not_found(name, root, f"{path} has no key {key!r} (found {found})")
    return contents[key]


# ---------------------------------------------------------------------------------------------
# MARS


def _load_mars(root: str, split: int, gallery_includes_queries: bool, skipped: list[str]) -> VideoReIDDataset:
    if split != 0:
        raise ValueError(f"split={split} for MARS: MARS has one fixed train/test partition, so split must be 0")
    info = os.path.join(root, "info")
    _require("mars", root, info, "folder")
    train = _mars_tracklets(root, "train", skipped)
    test = _mars_tracklets(root, "test", skipped)

    query_file = os.path.join(info, "query_IDX.mat")
    query_rows = [int(i) - 1 for i in _load_mat("mars", root, query_file, "query_IDX").ravel()]
    bad = [i + 1 for i in query_rows if not 0 <= i < len(test)]
    if bad:
        raise ValueError(
            f"{query_file}: query_IDX entries {bad[:5]} are outside 1..{len(test)} "
            f"(the rows of info/tracks_test_info.mat)"
        )
    query_set = set(query_rows)
    # Test rows are kept aligned with the track table (None = empty) so query_IDX indexes them directly.
    query = [test[i] for i in query_rows if test[i] is not None and test[i].pid != -1]
    gallery = [
        t
        for i, t in enumerate(test)
        if t is not None and t.pid != -1 and (gallery_includes_queries or i not in query_set)
    ]
    train_tracklets = relabel([t for t in train if t is not None and t.pid != -1])
    protocol = {
        "split": 0,
        "split_source": "fixed (info/tracks_train_info.mat, info/tracks_test_info.mat)",
        "query": "rows of info/query_IDX.mat",
        "gallery": "includes queries (authors' release)" if gallery_includes_queries else "excludes queries",
        "junk": "pid -1 dropped",
        "distractors": "pid 0 kept in the gallery",
    }
    return VideoReIDDataset("mars", root, train_tracklets, query, gallery, 0, protocol)


def _mars_tracklets(root: str, subset: str, skipped: list[str]) -> list[Tracklet | None]:
    """One entry per row of the track table (None for an empty row); pids as in the table."""
    names_file = os.path.join(root, "info", f"{subset}_name.txt")
    table_file = os.path.join(root, "info", f"tracks_{subset}_info.mat")
    frames_dir = os.path.join(root, f"bbox_{subset}")
    _require("mars", root, names_file)
    _require("mars", root, frames_dir, "folder")
    with open(names_file) as f:
        names = [line.strip() for line in f]
    names = [n for n in names if n]
    table = _load_mat("mars", root, table_file, f"track_{subset}_info")
    if table.ndim != 2 or (table.size and table.shape[1] != 4):
        raise ValueError(f"{table_file}: expected rows [start, end, pid, camid], got an array of shape {table.shape}")
    # Check one frame only: listing or stat-ing a million files would make loading slow.
    if names and not os.path.isfile(os.path.join(frames_dir, names[0][:4], names[0])):
        raise _not_found(
            "mars",
            root,
            f"{names_file} lists {names[0]} but {os.path.join(frames_dir, names[0][:4], names[0])} does not exist",
        )
    # Paths are built by string joins (no per-file filesystem calls); the folder is the name's first
    # 4 characters, which also covers junk frames named "00-1C..." stored under "00-1".
    prefix = frames_dir + os.sep
    paths = [f"{prefix}{n[:4]}{os.sep}{n}" for n in names]
    numbers = [frame_number(n) for n in names]
    tracklets: list[Tracklet | None] = []
    for row, (start, end, pid, camid) in enumerate(table.astype(int).tolist(), start=1):
        if end < start:
            skipped.append(f"{table_file} row {row} (start {start} > end {end})")
            tracklets.append(None)
            continue
        if start < 1 or end > len(names):
            raise ValueError(
                f"{table_file} row {row}: frames {start}..{end} are outside 1..{len(names)}, the lines of {names_file}"
            )
        lo, hi = start - 1, end
        span = numbers[lo:hi]
        if all(a <= b for a, b in zip(span, span[1:])):
            frames = tuple(paths[lo:hi])
        else:  # the name list is not in frame order here: order by frame number, then name
            order = sorted(range(lo, hi), key=lambda i: (numbers[i], names[i]))
            frames = tuple(paths[i] for i in order)
        tracklets.append(Tracklet(frames, pid, camid - 1))
    return tracklets


# ---------------------------------------------------------------------------------------------
# iLIDS-VID


def _load_ilidsvid(root: str, split: int, test_first: bool, skipped: list[str]) -> VideoReIDDataset:
    sequences = os.path.join(root, "i-LIDS-VID", "sequences")
    cam_dirs = [_require("ilidsvid", root, os.path.join(sequences, cam), "folder") for cam in ("cam1", "cam2")]
    split_file = os.path.join(root, "train-test people splits", "train_test_splits_ilidsvid.mat")
    ls_set = _load_mat("ilidsvid", root, split_file, "ls_set")
    if ls_set.ndim != 2 or ls_set.shape[0] == 0:
        raise ValueError(f"{split_file}: 'ls_set' should be (num_splits, num_persons), got shape {ls_set.shape}")
    if not 0 <= split < ls_set.shape[0]:
        raise ValueError(
            f"split={split} is out of range: {split_file} has {ls_set.shape[0]} splits "
            f"(valid: 0..{ls_set.shape[0] - 1})"
        )
    persons = list_persons(cam_dirs[0])  # ls_set indexes the sorted cam1 person folders
    row = [int(i) - 1 for i in ls_set[split].ravel()]
    bad = [i + 1 for i in row if not 0 <= i < len(persons)]
    if bad:
        raise ValueError(
            f"{split_file}: split {split} refers to persons {bad[:5]}, but {cam_dirs[0]} "
            f"has only {len(persons)} person folders"
        )
    half = len(row) // 2
    test_idx, train_idx = (row[:half], row[half:]) if test_first else (row[half:], row[:half])

    def tracklets(person_indices: list[int], cams: tuple[int, ...]) -> list[Tracklet]:
        return _person_tracklets(
            "ilidsvid", root, cam_dirs, [persons[i] for i in sorted(person_indices)], cams, skipped
        )

    protocol = {
        "split": split,
        "split_source": "train-test people splits/train_test_splits_ilidsvid.mat",
        "ilidsvid_test": "first half (common)" if test_first else "second half (release)",
        "query": "cam1 of test persons",
        "gallery": "cam2 of test persons",
    }
    return VideoReIDDataset(
        "ilidsvid",
        root,
        relabel(tracklets(train_idx, (0, 1))),
        tracklets(test_idx, (0,)),
        tracklets(test_idx, (1,)),
        split,
        protocol,
    )


def _person_tracklets(
    name: str, root: str, cam_dirs: list[str], persons: list[str], cams: tuple[int, ...], skipped: list[str]
) -> list[Tracklet]:
    """One tracklet per (person folder, camera) of the two-camera datasets, persons in the given order;
    the pid is the number in the folder name; empty folders are recorded in ``skipped``."""
    out = []
    for person in persons:
        for cam in cams:
            folder = _require(name, root, os.path.join(cam_dirs[cam], person), "folder")
            frames = list_frames(folder)
            if frames:
                out.append(Tracklet(frames, frame_number(person), cam))
            else:
                skipped.append(f"{folder} (empty)")
    return out


# ---------------------------------------------------------------------------------------------
# PRID2011


def _load_prid(root: str, split: int, skipped: list[str]) -> VideoReIDDataset:
    multi_shot = os.path.join(root, "prid_2011", "multi_shot")
    cam_dirs = [_require("prid2011", root, os.path.join(multi_shot, cam), "folder") for cam in ("cam_a", "cam_b")]
    split_file = os.path.join(root, "splits_prid2011.json")
    if os.path.isfile(split_file):
        splits = _read_prid_splits(split_file)
        source = "splits_prid2011.json"
        if not 0 <= split < len(splits):
            raise ValueError(
                f"split={split} is out of range: {split_file} has {len(splits)} splits (valid: 0..{len(splits) - 1})"
            )
    else:
        splits = _generate_prid_splits(cam_dirs)
        source = "generated (not the community split)"
        if not 0 <= split < len(splits):
            raise ValueError(f"split={split} is out of range: {len(splits)} generated splits (no {split_file})")
        warnings.warn(
            f"prid2011: {split_file} not found; using splits generated with seed {PRID_SPLIT_SEED} from the "
            f"{len(splits[0]['train']) + len(splits[0]['test'])} persons with at least {PRID_MIN_FRAMES} frames in "
            f"both cameras. This is not the community split; numbers are not directly comparable to the paper's.",
            stacklevel=3,
        )
    chosen = splits[split]

    def tracklets(persons: list[str], cams: tuple[int, ...]) -> list[Tracklet]:
        return _person_tracklets("prid2011", root, cam_dirs, sorted(persons, key=frame_key), cams, skipped)

    protocol = {
        "split": split,
        "split_source": source,
        "query": "cam_a of test persons",
        "gallery": "cam_b of test persons",
    }
    if source.startswith("generated"):
        protocol["persons"] = f"in both cameras with > {PRID_MIN_FRAMES - 1} frames each (paper §4.1)"
    return VideoReIDDataset(
        "prid2011",
        root,
        relabel(tracklets(chosen["train"], (0, 1))),
        tracklets(chosen["test"], (0,)),
        tracklets(chosen["test"], (1,)),
        split,
        protocol,
    )


def _read_prid_splits(path: str) -> list[dict]:
    try:
        with open(path) as f:
            splits = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} cannot be read as JSON: {error}") from error
    if not isinstance(splits, list) or not all(
        isinstance(s, dict) and isinstance(s.get("train"), list) and isinstance(s.get("test"), list) for s in splits
    ):
        raise ValueError(f'{path}: expected a list of {{"train": [...], "test": [...]}} of person_NNNN names')
    return splits


def _generate_prid_splits(cam_dirs: list[str]) -> list[dict]:
    """Deterministic half/half splits of the persons with enough frames in both cameras."""
    in_b = set(list_persons(cam_dirs[1]))
    persons = [
        p
        for p in list_persons(cam_dirs[0])
        if p in in_b and all(len(list_frames(os.path.join(d, p))) >= PRID_MIN_FRAMES for d in cam_dirs)
    ]
    splits = []
    for k in range(NUM_SPLITS):
        rng = random.Random(PRID_SPLIT_SEED * 1000 + k)
        order = list(persons)
        # Fisher-Yates on rng.random(): unlike random.shuffle, stable across Python versions.
        for i in range(len(order) - 1, 0, -1):
            j = int(rng.random() * (i + 1))
            order[i], order[j] = order[j], order[i]
        half = len(order) // 2
        splits.append({"train": sorted(order[:half], key=frame_key), "test": sorted(order[half:], key=frame_key)})
    return splits
