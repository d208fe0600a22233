"""The tracklets the writers draw, each with its random stream and its role (train / query / gallery).

Mirrors :mod:`grl.data.synthetic.writers` draw for draw, so that the cues of every tracklet can be
re-derived without rendering (:mod:`grl.data.synthetic.cues`); roles are those of
:func:`grl.data.study_sets.load_study_dataset` at split 0 with its defaults: MARS junk (pid -1) has none, distractors and
queries are in the gallery; iLIDS-VID tests the first half of the split row; PRID2011 persons outside the split none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from grl.data.synthetic.appearance import Identity, make_identities, random_identity
from grl.data.synthetic.cameras import CameraStyle, camera_style
from grl.data.synthetic.seeds import CODES, DISTRACTOR, IDENTITY, LAYOUT, TRACKLET, rng_for
from grl.data.synthetic.sizes import preset_sizes, resolve_sizes
from grl.data.synthetic.writers import mars_people, tracklet_length

ROLES = ("train", "query", "gallery")


@dataclass
class Track:
    """One tracklet as the writer draws it; ``ident`` names the person (distractors are each their own)."""

    role: str
    pid: int
    cam: int
    ident: tuple
    person: Identity
    style: CameraStyle
    rng: np.random.Generator  # the tracklet's stream, right after the length draw(s): where rendering starts
    length: int


def tracks(name: str, preset: str = "full", seed: int = 0) -> list[Track]:
    """Every tracklet of dataset ``name`` in a train / query / gallery role (a MARS query is also in the gallery)."""
    sizes, code = resolve_sizes(name, **preset_sizes(preset, name)), CODES[name]
    size = (sizes["height"], sizes["width"])
    noise, quant = (3.0, 1) if name == "mars" else (0.0, 4)
    n_cams = sizes.get("num_cams", 2)
    strength = sizes["camera_strength"]
    styles = [camera_style(seed, code, c, size, noise=noise, quant=quant, strength=strength) for c in range(n_cams)]
    out: list[Track] = []

    def add(role, pid, cam, ident, person, key, prid=False):
        r = rng_for(seed, code, *key)
        if prid and r.random() < sizes["short_fraction"]:  # PRID's short sequences, as in write_prid2011
            length = tracklet_length(r, 5, 21)
        else:
            length = tracklet_length(r, sizes["min_len"], sizes["max_len"])
        if name == "ilidsvid":
            r.integers(0, 2000)  # the first frame number, drawn before rendering
        out.append(Track(role, pid, cam, ident, person, styles[cam], r, length))
        return out[-1]

    if name == "mars":
        test: list[Track] = []
        for subset, members in mars_people(seed, sizes).items():
            for pid, person in members:  # the writer's plans, in (pid, cam, tracklet) order
                r = rng_for(seed, code, IDENTITY, pid)
                k = int(r.integers(sizes["min_cams_per_id"], sizes["max_cams_per_id"] + 1))
                for cam in sorted(r.choice(n_cams, size=min(k, n_cams), replace=False).tolist()):
                    for j in range(1 + int(r.binomial(sizes["max_tracklets_per_cam"] - 1, 0.3))):
                        t = add(
                            subset if subset == "train" else "gallery",
                            pid,
                            cam,
                            (pid,),
                            person,
                            (TRACKLET, pid, cam, j),
                        )
                        if subset == "test":
                            test.append(t)
        for j in range(sizes["num_distractors"]):  # pid 0, gallery only; junk (pid -1) is no role's
            r = rng_for(seed, code, DISTRACTOR, j)
            cam, person = int(r.integers(n_cams)), random_identity(r)
            test.append(add("gallery", 0, cam, (0, j), person, (DISTRACTOR, j, 1)))
        test.sort(key=lambda t: (t.pid, t.cam))  # the test track table's row order
        by_pid_cam: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(test):
            if t.pid > 0:
                by_pid_cam.setdefault((t.pid, t.cam), []).append(i)
        qr = rng_for(seed, code, LAYOUT, 1)
        for _, rows in sorted(by_pid_cam.items()):
            q = test[int(qr.choice(rows))]
            out.append(replace(q, role="query"))  # the same tracklet, stream included
        return out
    if name == "ilidsvid":
        n, lay = sizes["num_ids"], rng_for(seed, code, LAYOUT)
        numbers = np.sort(lay.choice(np.arange(1, n + n // 15 + 2), n, replace=False))
        test = set(numbers[lay.permutation(n)[: n // 2]].tolist())  # split 0's first half (``ilidsvid_test_first``)
        for number, person in zip(numbers.tolist(), make_identities(seed, code, 0, n, sizes["group_size"])):
            for cam in range(2):
                role = ("query", "gallery")[cam] if number in test else "train"
                add(role, number, cam, (number,), person, (TRACKLET, number, cam))
        return out
    na, nb, both = sizes["num_cam_a"], sizes["num_cam_b"], sizes["num_both"]
    people = make_identities(seed, code, 0, na + nb - both, sizes["group_size"])
    plan = [(0, p, p - 1) for p in range(1, na + 1)] + [
        (1, p, p - 1 if p <= both else na + p - both - 1) for p in range(1, nb + 1)
    ]
    made = {(cam, p): add("?", p, cam, (idx,), people[idx], (TRACKLET, p, cam), prid=True) for cam, p, idx in plan}
    eligible = [p for p in range(1, both + 1) if min(made[(0, p)].length, made[(1, p)].length) > 21]
    perm = [eligible[i] for i in rng_for(seed, code, LAYOUT).permutation(len(eligible))]
    test = set(perm[len(perm) // 2 :])
    for (cam, p), t in made.items():
        t.role = ("query", "gallery")[cam] if p in test else "train" if p in perm else "?"
    return [t for t in out if t.role != "?"]  # persons outside split 0 (one camera, too short) have no role
