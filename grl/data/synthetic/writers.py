"""Dataset writers: the MARS-, iLIDS-VID- and PRID2011-like sets in their distributed on-disk layouts.

Each writer renders every tracklet of its dataset into a root folder and returns counts for the
manifest; :data:`FORMATS` describes the layouts (folders, file names, ``.mat`` tables, splits).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np

from grl.data.synthetic.appearance import Identity, make_identities, random_identity
from grl.data.synthetic.cameras import camera_style
from grl.data.synthetic.formats import write_frames, write_mat
from grl.data.synthetic.render import render_tracklet
from grl.data.synthetic.seeds import CODES, DISTRACTOR, IDENTITY, JUNK, LAYOUT, TRACKLET, rng_for
from grl.data.synthetic.sizes import resolve_sizes


def tracklet_length(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Tracklet length in [lo, hi], skewed towards short ones (mean ~ lo + (hi - lo) / 3) as real tracks are."""
    return lo + int((hi - lo + 1) * rng.random() ** 2)


def _progress(items: Iterable, total: int, desc: str, progress: bool | None):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; stay usable without it
        return items
    return tqdm(
        items, total=total, desc=desc, unit="id", disable=None if progress is None else not progress, leave=False
    )


def _mars_pids(seed: int, sizes: dict) -> dict[str, list[int]]:
    """The MARS-like set's train and test pids, each list in the order identities are drawn."""
    n_train, n_test = sizes["num_train_ids"], sizes["num_test_ids"]
    lay = rng_for(seed, CODES["mars"], LAYOUT)
    # Real MARS pids are sparse and train/test interleave; mimic that so loaders must relabel.
    pids = np.sort(lay.choice(np.arange(1, 2 * (n_train + n_test) + 1), n_train + n_test, replace=False))
    is_train = np.zeros(len(pids), dtype=bool)
    is_train[lay.choice(len(pids), n_train, replace=False)] = True
    return {"train": [int(p) for p in pids[is_train]], "test": [int(p) for p in pids[~is_train]]}


def mars_people(seed: int, sizes: dict) -> dict[str, list[tuple[int, Identity]]]:
    code = CODES["mars"]
    pids = _mars_pids(seed, sizes)
    return {
        subset: list(zip(pids[subset], make_identities(seed, code, k, len(pids[subset]), sizes["group_size"])))
        for k, subset in enumerate(("train", "test"))
    }


def outfit_groups(seed: int = 0, **sizes) -> dict[int, int]:
    """pid → outfit group of the MARS-like set generated with ``seed`` and ``sizes``.

    Identities of one group share outfit and body shape and differ only in the fine cues
    (:func:`make_identities`); groups are numbered train first, then test. Distractors (pid 0)
    and junk (pid −1) belong to no group. For diagnostics: e.g. how often a look-alike ranks first.
    """
    resolved = resolve_sizes("mars", **sizes)
    pids, size = _mars_pids(seed, resolved), resolved["group_size"]
    offset = math.ceil(len(pids["train"]) / size)
    groups = {pid: i // size for i, pid in enumerate(pids["train"])}
    groups.update({pid: offset + i // size for i, pid in enumerate(pids["test"])})
    return groups


def write_mars(root: Path, seed: int, sizes: dict, progress: bool | None = None) -> dict:
    """MARS layout: info/*.txt, info/*.mat, bbox_train/<pid>/..., bbox_test/<pid>/... (returns counts)."""
    code = CODES["mars"]
    size = (sizes["height"], sizes["width"])
    cams = sizes["num_cams"]
    styles = [camera_style(seed, code, c, size, noise=3.0, strength=sizes["camera_strength"]) for c in range(cams)]
    people = mars_people(seed, sizes)
    # Plans: (pid, cam 0-based, identity, rng key); rendering happens in pid order below.
    plans: dict[str, list] = {"train": [], "test": []}
    for subset, members in people.items():
        for pid, person in members:
            r = rng_for(seed, code, IDENTITY, int(pid))
            k = int(r.integers(sizes["min_cams_per_id"], sizes["max_cams_per_id"] + 1))
            for cam in sorted(r.choice(cams, size=min(k, cams), replace=False).tolist()):
                n = 1 + int(r.binomial(sizes["max_tracklets_per_cam"] - 1, 0.3))
                for j in range(n):
                    plans[subset].append((int(pid), cam, person, (TRACKLET, int(pid), cam, j)))
    for j in range(sizes["num_distractors"]):
        r = rng_for(seed, code, DISTRACTOR, j)
        plans["test"].append((0, int(r.integers(cams)), random_identity(r), (DISTRACTOR, j, 1)))
    for j in range(sizes["num_junk"]):
        r = rng_for(seed, code, JUNK, j)
        plans["test"].append(
            (-1, int(r.integers(cams)), random_identity(r) if r.random() < 0.6 else None, (JUNK, j, 1))
        )

    counts = {}
    for subset in ("train", "test"):
        folder = root / f"bbox_{subset}"
        plans[subset].sort(key=lambda p: (p[0], p[1]))  # stable: keeps tracklet order within (pid, cam)
        names_all: list[str] = []
        rows: list[list[int]] = []
        next_t: dict[tuple[int, int], int] = {}
        pid_of_row: list[int] = []
        for pid, cam, person, key in _progress(plans[subset], len(plans[subset]), f"mars {subset}", progress):
            r = rng_for(seed, code, *key)
            length = tracklet_length(r, sizes["min_len"], sizes["max_len"])
            frames, _ = render_tracklet(person, styles[cam], length, r, size, partial=pid == -1 and person is not None)
            tnum = next_t[(pid, cam)] = next_t.get((pid, cam), 0) + 1
            tag = "00-1" if pid == -1 else f"{pid:04d}"
            names = [f"{tag}C{cam + 1}T{tnum:04d}F{f + 1:03d}.jpg" for f in range(length)]
            write_frames(folder / tag, names, frames, "jpg")
            rows.append([len(names_all) + 1, len(names_all) + length, pid, cam + 1])
            pid_of_row.append(pid)
            names_all.extend(names)
        (root / "info").mkdir(parents=True, exist_ok=True)
        (root / "info" / f"{subset}_name.txt").write_text("".join(n + "\n" for n in names_all))
        write_mat(
            root / "info" / f"tracks_{subset}_info.mat", {f"track_{subset}_info": np.array(rows, dtype=np.float64)}
        )
        counts[f"{subset}_tracklets"] = len(rows)
        counts[f"{subset}_frames"] = len(names_all)
        if subset == "test":
            # One query per (identity, camera), as MARS does; every test identity has >= 2 cameras.
            qr = rng_for(seed, code, LAYOUT, 1)
            by_pid_cam: dict[tuple[int, int], list[int]] = {}
            for i, row in enumerate(rows):
                if row[2] > 0:
                    by_pid_cam.setdefault((row[2], row[3]), []).append(i + 1)
            query = sorted(int(qr.choice(v)) for _, v in sorted(by_pid_cam.items()))
            write_mat(root / "info" / "query_IDX.mat", {"query_IDX": np.array(query, dtype=np.float64)})
            counts["query_tracklets"] = len(query)
            counts["distractor_tracklets"] = sum(p == 0 for p in pid_of_row)
            counts["junk_tracklets"] = sum(p == -1 for p in pid_of_row)
    counts["train_ids"], counts["test_ids"] = len(people["train"]), len(people["test"])
    return counts


def write_ilidsvid(root: Path, seed: int, sizes: dict, progress: bool | None = None) -> dict:
    """iLIDS-VID layout: i-LIDS-VID/sequences/cam{1,2}/personNNN/*.png + the ls_set split file."""
    code = CODES["ilidsvid"]
    size = (sizes["height"], sizes["width"])
    n = sizes["num_ids"]
    styles = [
        camera_style(seed, code, c, size, noise=0.0, quant=4, strength=sizes["camera_strength"]) for c in range(2)
    ]
    lay = rng_for(seed, code, LAYOUT)
    # The real set skips some person numbers (300 people, numbers up to 319).
    numbers = np.sort(lay.choice(np.arange(1, n + n // 15 + 2), n, replace=False))
    people = make_identities(seed, code, 0, n, sizes["group_size"])
    frames_total = 0
    for number, person in _progress(zip(numbers, people), n, "ilidsvid", progress):
        for cam in range(2):
            r = rng_for(seed, code, TRACKLET, int(number), cam)
            length = tracklet_length(r, sizes["min_len"], sizes["max_len"])
            start = int(r.integers(0, 2000))
            frames, _ = render_tracklet(person, styles[cam], length, r, size)
            folder = root / "i-LIDS-VID" / "sequences" / f"cam{cam + 1}" / f"person{number:03d}"
            names = [f"cam{cam + 1}_person{number:03d}_{start + f:05d}.png" for f in range(length)]
            write_frames(folder, names, frames, "png")
            frames_total += length
    ls_set = np.stack([lay.permutation(n) + 1 for _ in range(sizes["num_splits"])]).astype(np.float64)
    write_mat(root / "train-test people splits" / "train_test_splits_ilidsvid.mat", {"ls_set": ls_set})
    return {"ids": n, "tracklets": 2 * n, "frames": frames_total, "splits": sizes["num_splits"]}


def write_prid2011(root: Path, seed: int, sizes: dict, progress: bool | None = None) -> dict:
    """PRID2011 layout: prid_2011/multi_shot/cam_{a,b}/person_NNNN/NNNN.png (+ splits_prid2011.json).

    As in the real set, person_0001..person_<num_both> are the same people in both cameras;
    higher numbers are different people in cam_a and cam_b.
    """
    code = CODES["prid2011"]
    size = (sizes["height"], sizes["width"])
    na, nb, both = sizes["num_cam_a"], sizes["num_cam_b"], sizes["num_both"]
    if not both <= min(na, nb):
        raise ValueError(f"prid2011: num_both={both} must be <= num_cam_a={na} and num_cam_b={nb}")
    styles = [
        camera_style(seed, code, c, size, noise=0.0, quant=4, strength=sizes["camera_strength"]) for c in range(2)
    ]
    people = make_identities(seed, code, 0, na + nb - both, sizes["group_size"])
    # (cam, person number, identity index): cam_b-only people come after cam_a-only ones.
    plan = [(0, p, p - 1) for p in range(1, na + 1)] + [
        (1, p, p - 1 if p <= both else na + p - both - 1) for p in range(1, nb + 1)
    ]
    plan.sort(key=lambda c: (c[2], c[0]))
    length_of: dict[tuple[int, int], int] = {}
    for cam, number, idx in _progress(plan, len(plan), "prid2011", progress):
        r = rng_for(seed, code, TRACKLET, number, cam)
        if r.random() < sizes["short_fraction"]:
            length = tracklet_length(r, 5, 21)  # the paper drops sequences with <= 21 frames
        else:
            length = tracklet_length(r, sizes["min_len"], sizes["max_len"])
        frames, _ = render_tracklet(people[idx], styles[cam], length, r, size)
        folder = root / "prid_2011" / "multi_shot" / f"cam_{'ab'[cam]}" / f"person_{number:04d}"
        write_frames(folder, [f"{f + 1:04d}.png" for f in range(length)], frames, "png")
        length_of[(cam, number)] = length
    eligible = [p for p in range(1, both + 1) if min(length_of[(0, p)], length_of[(1, p)]) > 21]
    counts = {"cam_a": na, "cam_b": nb, "both": both, "eligible": len(eligible), "frames": sum(length_of.values())}
    if sizes["write_splits"]:
        lay = rng_for(seed, code, LAYOUT)
        splits = []
        for _ in range(sizes["num_splits"]):
            perm = [eligible[i] for i in lay.permutation(len(eligible))]
            half = len(perm) // 2
            splits.append(
                {
                    "train": [f"person_{p:04d}" for p in sorted(perm[:half])],
                    "test": [f"person_{p:04d}" for p in sorted(perm[half:])],
                }
            )
        (root / "splits_prid2011.json").write_text(json.dumps(splits, indent=1) + "\n")
        counts["splits"] = sizes["num_splits"]
    return counts


# name -> writer(root, seed, sizes, progress) -> counts (for the manifest)
WRITERS = {"mars": write_mars, "ilidsvid": write_ilidsvid, "prid2011": write_prid2011}

# name -> the layout the writer produces, in one line (recorded in the manifest)
FORMATS = {
    "mars": "MARS: info/{train,test}_name.txt, info/tracks_{train,test}_info.mat, info/query_IDX.mat, bbox_{train,test}/",
    "ilidsvid": "iLIDS-VID: i-LIDS-VID/sequences/cam{1,2}/personNNN/, train-test people splits/train_test_splits_ilidsvid.mat",
    "prid2011": "PRID2011: prid_2011/multi_shot/cam_{a,b}/person_NNNN/, splits_prid2011.json",
}
