"""Cue statistics of the synthetic sets: counting on hand-made inputs, agreement with the generated files and pixels."""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from grl.data import load_dataset
from grl.data import synthetic as S
from grl.data.synthetic import cues
from grl.data.synthetic.render import draw_frame, plan_tracklet
from grl.data.synthetic.tracklets import tracks

os.environ.setdefault("OMP_NUM_THREADS", "1")

# sha256 of render_tracklet's frames and flags below, computed with the generator before plan_tracklet was split out.
RENDER_SHA = "84d786298789e757ac1b43a40cd5ceb4bc0c5ffb7ef6ae10b01a5923c3890cf5"


def test_render_tracklet_is_bit_identical_to_before_the_split():
    style = S.camera_style(0, 1, 0, (64, 32), noise=3.0)
    base = S.make_identities(0, 1, 0, 1, 1)[0]
    person = S.Identity(**{**base.__dict__, "bag": (200, 30, 30), "hat": (20, 20, 90)})
    h = hashlib.sha256()
    for k in range(12):  # with and without bag/hat, background only, partial crops, occluders
        who = (person, base, None)[k % 3]
        frames, visible = S.render_tracklet(who, style, 6 + k, np.random.default_rng(k), (64, 32), partial=k % 4 == 1)
        h.update(frames.tobytes())
        for cue in ("bag", "hat", "shoes", "occluder"):
            h.update(visible[cue].tobytes())
    assert h.hexdigest() == RENDER_SHA


def _row(bag, hat, shoes, frames=4, cover=None, sep=0, pooled=True, shared=True, **kw):
    return dict(
        dataset="mars", role="train", pid=1, cam=0, ident=(kw.get("ident", 1),), frames=frames,
        bag_frames=bag, hat_frames=hat, shoes_frames=shoes, occluder_frames=[], cover=cover or [0.0] * frames,
        cx_range=10.0, feet_range=3.0, scale_change=0.1, shared_outfit=shared, separating_frames=sep,
        separable_pooled=pooled,
    )  # fmt: skip


def test_intermittent_counts_some_but_not_all_frames():
    assert cues.intermittent([0, 2], 4)
    assert not cues.intermittent([0, 1, 2, 3], 4)
    assert not cues.intermittent([], 4)
    assert not cues.intermittent(None, 4)  # the person has no such cue


def test_summary_on_hand_made_tracklets():
    df = pd.DataFrame(
        [
            _row([0, 2], None, [0, 1, 2, 3], cover=[0.0, 0.5, 0.25, 0.0], sep=2, ident=1),  # bag intermittent
            _row(None, [0, 1, 2, 3], [0, 1, 2, 3], sep=4, ident=2),  # every cue in every frame
            _row(None, None, [], sep=0, pooled=False, shared=False, ident=3),  # shoes never shown
            _row(None, None, [1], sep=0, pooled=False, ident=4),  # shoes in frame 1 only
        ]
    )
    s = cues.summary(df).loc[("mars", "train")]
    assert s["tracklets"] == 4 and s["ids"] == 4
    assert s["% intermittent fine cue"] == 50.0  # rows 1 and 4
    assert s["% intermittent bag/hat"] == 25.0
    assert s["% occluded (occluder over person)"] == 25.0
    assert s["mean % frames occluded | occl."] == 50.0 and s["mean max cover | occl. (%)"] == 50.0
    assert s["% ids sharing outfit"] == 75.0
    assert s["% look-alike told apart in some frames only"] == pytest.approx(100 / 3, abs=0.1)
    assert s["% look-alike never told apart"] == pytest.approx(100 / 3, abs=0.1)


def test_separates_only_on_a_shown_differing_cue():
    a = S.make_identities(0, 1, 0, 1, 1)[0]
    a = dataclasses.replace(a, bag=(200, 30, 30), bag_side=1, hat=None)
    b = dataclasses.replace(a, bag=None)  # a look-alike without the bag
    c = dataclasses.replace(a, bag_side=-1)  # the same bag on the other side
    hidden = dict(bag=False, hat=False, shoes=False)
    assert cues.outfit(a) == cues.outfit(b)
    assert cues.separates(a, {**hidden, "bag": True}, b) and cues.separates(a, {**hidden, "bag": True}, c)
    assert not cues.separates(a, hidden, b)
    assert not cues.separates(b, {**hidden, "shoes": True}, a)  # b's missing bag proves nothing
    assert cues.outfit(dataclasses.replace(a, pattern="plain", pattern_colour=(1, 2, 3))) == cues.outfit(
        dataclasses.replace(a, pattern="plain")
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("cues")
    return {n: S.generate(n, base / n, 0, **S.preset_sizes("small", n)) for n in ("mars", "ilidsvid", "prid2011")}


@pytest.mark.parametrize("name", ["mars", "ilidsvid", "prid2011"])
def test_tracks_are_the_loaded_tracklets(generated, name):
    ds, ts = load_dataset(name, generated[name]), tracks(name, "small")
    for role in ("query", "gallery"):
        assert sorted((t.pid, t.cam, t.length) for t in ts if t.role == role) == sorted(
            (t.pid, t.camid, len(t)) for t in getattr(ds, role)
        )
    assert sorted((t.cam, t.length) for t in ts if t.role == "train") == sorted((t.camid, len(t)) for t in ds.train)


@pytest.mark.parametrize("name", ["ilidsvid", "prid2011"])  # lossless PNG: the files are exactly the rendering
def test_tracks_render_the_written_frames(generated, name):
    ds = load_dataset(name, generated[name])
    files = {(t.pid, t.camid): t.frames for t in ds.query + ds.gallery}
    for t in [t for t in tracks(name, "small") if t.role != "train"][:6]:
        frames, _ = S.render_tracklet(t.person, t.style, t.length, t.rng, t.style.scale.shape[:2])
        written = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files[(t.pid, t.cam)]])
        assert np.array_equal(frames, written)


def test_flags_are_what_the_frames_show():
    checked = 0
    for t in tracks("prid2011", "small")[:20]:
        plan = plan_tracklet(t.person, t.style, t.length, t.rng, t.style.scale.shape[:2])
        h, w = plan.size
        for i in range(t.length):
            bg = t.style.background[plan.oy[i] : plan.oy[i] + h, plan.ox[i] : plan.ox[i] + w]
            flags = {c: bool(plan.visible[c][i]) for c in cues.FINE}
            frame = draw_frame(t.person, plan, i, bg)
            for c in cues.FINE:
                if c != "shoes" and getattr(t.person, c) is None:
                    assert not flags[c]
                    continue
                shown = draw_frame(t.person, plan, i, bg, visible={**flags, c: True})
                hidden = draw_frame(t.person, plan, i, bg, visible={**flags, c: False})
                assert (shown != hidden).any(), (c, i)  # the cue has pixels of its own
                assert np.array_equal(frame, shown if flags[c] else hidden), (c, i)
                checked += 1
            cover = cues.covered(t.person, plan, i)
            assert 0.0 <= cover <= 1.0 and (cover == 0 or plan.visible["occluder"][i])
            if cover > 0:  # drawing the occluder changes the person's pixels
                assert (draw_frame(t.person, plan, i, bg, t.style.occluder) != frame).any()
    assert checked > 100


def test_covered_on_a_hand_made_pole():
    t = tracks("ilidsvid", "small")[0]
    plan = plan_tracklet(t.person, t.style, t.length, t.rng, t.style.scale.shape[:2])
    h, w = plan.size
    on = {**plan.visible, "occluder": np.ones(t.length, bool)}
    whole = dataclasses.replace(plan, occluder=("pole", -1.0, 0.0, w + 2.0, (0, 0, 0)), visible=on)
    left = dataclasses.replace(plan, occluder=("pole", -1.0, 0.0, float(plan.cx[0]), (0, 0, 0)), visible=on)
    gone = dataclasses.replace(plan, occluder=None)
    assert cues.covered(t.person, whole, 0) == 1.0
    assert 0.3 < cues.covered(t.person, left, 0) < 0.7  # about the half left of the body's centre
    assert cues.covered(t.person, gone, 0) == 0.0


def test_facts_and_command_on_the_small_set(tmp_path, capsys):
    df = cues.facts("ilidsvid", "small")
    assert len(df) == 64 and set(df.role) == {"train", "query", "gallery"}
    assert df.apply(lambda r: r.bag_frames is None or 0 < len(r.bag_frames) < r.frames, axis=1).all()
    png = tmp_path / "cues.png"
    cues.main(["--dataset", "ilidsvid", "--size", "small", "--figure", str(png)])
    out = capsys.readouterr().out
    assert "% intermittent fine cue" in out and "### ilidsvid (small preset, seed 0)" in out and " query |" in out
    assert png.stat().st_size > 1000
