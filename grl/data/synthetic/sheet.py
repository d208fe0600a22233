"""Contact sheet: a few identities across cameras in one image, to see what a dataset looks like.

The dataset is read by :func:`grl.data.study_sets.load_study_dataset`, the project's one parser of each
on-disk layout, so the sheet shows exactly the tracklets and labels that training and evaluation see.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from grl.data.datasets import Tracklet, read_frame
from grl.data.study_sets import load_study_dataset
from grl.data.synthetic.sizes import check_name
from grl.data.synthetic.writers import FORMATS

LABEL_WIDTH = 110  # pixels left of each row for its "id ..." / "cam..." label
GAP = 2  # pixels between frames and between rows


def camera_label(name: str, camid: int) -> str:
    """Camera ``camid`` (0-based) as dataset ``name`` names it: cam_a / cam_b for PRID2011, cam1, cam2, ... else."""
    return f"cam_{'ab'[camid]}" if name == "prid2011" else f"cam{camid + 1}"


def contact_sheet_rows(
    root: str | os.PathLike, name: str, num_ids: int = 4, seed: int = 0
) -> list[tuple[int, int, Tracklet]]:
    """The rows of :func:`contact_sheet`: ``(pid, camid, tracklet)``, one per camera of each chosen identity.

    Identities are drawn (by ``seed``) among the test identities of split 0 seen by at least two
    cameras: their pids are the dataset's own, whereas the loader relabels training pids 0..N-1.
    MARS distractors (pid 0) are left out. Each row holds the identity's first tracklet in that camera.
    """
    dataset = load_study_dataset(check_name(name), root)
    by_id: dict[int, dict[int, Tracklet]] = {}
    for tracklet in dataset.gallery + dataset.query:  # gallery first: MARS tracklets in track-table order
        if tracklet.pid > 0:
            by_id.setdefault(tracklet.pid, {}).setdefault(tracklet.camid, tracklet)
    ids = sorted(pid for pid, cams in by_id.items() if len(cams) >= 2)
    if not ids:
        raise ValueError(f"no identity seen by two cameras under {root} ({FORMATS[name]})")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(ids), size=min(num_ids, len(ids)), replace=False).tolist())
    return [(ids[i], cam, by_id[ids[i]][cam]) for i in chosen for cam in sorted(by_id[ids[i]])]


def contact_sheet(
    root: str | os.PathLike, name: str, num_ids: int = 4, frames_per_tracklet: int = 4, seed: int = 0
) -> Image.Image:
    """A grid of a few identities across cameras: one row per (identity, camera), labelled.

    Works on any dataset in the layout of ``name`` (generated or real); the rows are those of
    :func:`contact_sheet_rows`, frames are evenly spaced over each row's tracklet and resized to
    the first frame's size.
    """
    rows = contact_sheet_rows(root, name, num_ids, seed)
    fw, fh = read_frame(rows[0][2].frames[0]).size
    sheet = Image.new("RGB", (LABEL_WIDTH + frames_per_tracklet * (fw + GAP), len(rows) * (fh + GAP)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (pid, camid, tracklet) in enumerate(rows):
        y = r * (fh + GAP)
        draw.text((4, y + fh // 2 - 12), f"id {pid}", fill=(0, 0, 0))
        draw.text((4, y + fh // 2 + 2), camera_label(name, camid), fill=(90, 90, 90))
        picks = np.linspace(0, len(tracklet) - 1, frames_per_tracklet).round().astype(int)
        for c, k in enumerate(picks):
            sheet.paste(read_frame(tracklet.frames[k]).resize((fw, fh)), (LABEL_WIDTH + c * (fw + GAP), y))
    return sheet
