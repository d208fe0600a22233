"""Built-in synthetic video Re-ID datasets, written in the real datasets' on-disk formats.

Three generators produce a MARS-like, an iLIDS-VID-like and a PRID2011-like dataset whose
folders, file names, ``.mat`` tables and split files follow the distributed datasets exactly,
so :func:`grl.data.datasets.load_dataset` reads them with no special case.

What is modelled
----------------
* Pedestrians drawn procedurally (PIL primitives, no external assets): head, hair, torso,
  arms and legs with a walking cycle (leg/arm swing, vertical bob).
* **Conspicuous, continuous cues**: top and bottom colours, a top pattern (plain, horizontal
  stripes, vertical stripes, two-tone), body height and width. These are *shared* by groups of
  ``group_size`` identities, so within a group only the fine cues tell people apart.
* **Small, intermittent cues**: a bag (colour, side), shoe colour and a hat. Each is visible
  only in some frames of a tracklet (the bag swings behind the body as the person turns, shoes
  and hat go in and out of view); :func:`render_tracklet` returns the per-frame visibility flags.
  This is the situation GRL's reciprocal learning targets: the global cue is always there, the
  discriminative local cue only in some frames.
* **Cameras** differ in colour cast, brightness, contrast, illumination gradient, background
  (wall/floor colours and texture), blur and sensor noise.
* **Tracklets** have walking motion, per-frame misalignment (position jitter), scale drift,
  background panning and, in some tracklets, passing occluders (a pole or another passer-by).
* MARS extras: distractor tracklets (pid 0, unique random people) and junk tracklets
  (pid -1, partial detections / background), queries chosen one per (test identity, camera).

What is not modelled
--------------------
No 3-D pose or viewpoint change of the body shape, no lighting physics, no detector/tracker
failure modes beyond junk tracklets, no crowd interaction, no realistic textures. The PNG sets
(iLIDS-VID, PRID2011) carry no sensor noise and are quantised to steps of 4 grey levels, which
keeps lossless frames ~4 KB; the MARS-like JPEG set has mild noise. Absolute
accuracies on these sets say nothing about real-data accuracy; they exercise the full pipeline
and let ablations show whether a component can exploit intermittent fine cues.

Reproducibility: every random draw comes from ``numpy.random.default_rng`` seeded by a tuple
(seed, dataset, purpose, index...), so the same seed gives byte-identical files (PNG/JPEG
encoding is deterministic; the ``.mat`` header timestamp is replaced by a fixed text), and an
identity renders the same whatever else is generated. Generation happens in a temporary
sibling folder that is renamed into place once ``manifest.json`` (written last) is there, so an
interrupted run leaves no half-dataset behind and is simply redone.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from grl.paths import data_dir
from grl.utils import atomic_write_json, fault_point

log = logging.getLogger(__name__)

GENERATOR = "grl.data.synthetic"
GENERATOR_VERSION = 2  # bump whenever the output changes: stale caches are then regenerated
DATASETS = ("mars", "ilidsvid", "prid2011")
_CODES = {"mars": 1, "ilidsvid": 2, "prid2011": 3}  # part of every rng seed tuple
# Purposes in the seed tuple, so that different kinds of draws never share a stream.
_CAMERA, _GROUP, _IDENTITY, _TRACKLET, _LAYOUT, _DISTRACTOR, _JUNK = range(7)

DEFAULT_SIZES: dict[str, dict[str, Any]] = {
    "mars": dict(
        num_train_ids=150, num_test_ids=150, num_cams=6, min_cams_per_id=2, max_cams_per_id=3,
        max_tracklets_per_cam=2, min_len=8, max_len=40, num_distractors=40, num_junk=12,
        group_size=4, height=128, width=64,
    ),
    "ilidsvid": dict(num_ids=100, min_len=23, max_len=60, num_splits=10, group_size=4, height=128, width=64),
    "prid2011": dict(
        num_cam_a=120, num_cam_b=160, num_both=100, min_len=22, max_len=60, short_fraction=0.1,
        num_splits=10, write_splits=True, group_size=4, height=128, width=64,
    ),
}

# ----------------------------------------------------------------------------- appearance

# Clothing palette: deliberately a handful of colours, so outfits collide across groups too.
CLOTHES = np.array([
    (200, 30, 35), (30, 60, 170), (35, 130, 50), (230, 200, 40), (240, 240, 235), (25, 25, 30),
    (120, 120, 125), (140, 80, 40), (230, 120, 30), (120, 40, 140), (90, 170, 200), (220, 140, 160),
    (60, 80, 50), (190, 170, 130),
], dtype=np.uint8)
PATTERNS = ("plain", "hstripes", "vstripes", "twotone")
HEIGHTS = (0.86, 0.93, 1.0)
WIDTHS = (0.85, 1.0, 1.18)
SKINS = ((235, 200, 170), (200, 150, 110), (140, 95, 65), (95, 65, 45))
HAIRS = ((30, 25, 20), (90, 60, 30), (180, 150, 90), (110, 110, 110))
BAG_COLOURS = ((110, 65, 30), (20, 20, 20), (200, 30, 30), (40, 90, 200))
SHOE_COLOURS = ((245, 245, 245), (15, 15, 15), (220, 30, 30), (240, 210, 30), (30, 120, 230))
HAT_COLOURS = ((230, 60, 20), (20, 20, 90), (250, 250, 250), (30, 140, 60))
_SHADOW = (45, 42, 40)  # what the feet look like when the shoes are not discernible
# Fine-cue combinations: bag (none, or colour x side), shoe colour, hat (none or colour).
_NUM_BAG = 1 + 2 * len(BAG_COLOURS)
_NUM_HAT = 1 + len(HAT_COLOURS)
_NUM_FINE = _NUM_BAG * len(SHOE_COLOURS) * _NUM_HAT


@dataclass(frozen=True)
class Identity:
    """What a person looks like. ``bag``/``hat`` are None when the person has none."""

    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    pattern: str
    pattern_colour: tuple[int, int, int]
    height: float  # relative body height
    width: float  # relative body width
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shoes: tuple[int, int, int]
    bag: tuple[int, int, int] | None = None
    bag_side: int = 1  # +1: bag on the image's right, -1: left
    hat: tuple[int, int, int] | None = None


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) % 2**63, *[int(k) for k in key]])


def _colour(c: Sequence[int]) -> tuple[int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]))


def _outfit(rng: np.random.Generator) -> dict:
    top, bottom, pat = rng.choice(len(CLOTHES), size=3, replace=False)
    return dict(
        top=_colour(CLOTHES[top]), bottom=_colour(CLOTHES[bottom]), pattern=PATTERNS[rng.integers(len(PATTERNS))],
        pattern_colour=_colour(CLOTHES[pat]), height=HEIGHTS[rng.integers(len(HEIGHTS))],
        width=WIDTHS[rng.integers(len(WIDTHS))], skin=SKINS[rng.integers(len(SKINS))],
        hair=HAIRS[rng.integers(len(HAIRS))],
    )


def _fine_cues(code: int) -> dict:
    bag, rest = code % _NUM_BAG, code // _NUM_BAG
    shoes, hat = rest % len(SHOE_COLOURS), rest // len(SHOE_COLOURS)
    return dict(
        bag=None if bag == 0 else BAG_COLOURS[(bag - 1) // 2], bag_side=1 if bag % 2 else -1,
        shoes=SHOE_COLOURS[shoes], hat=None if hat == 0 else HAT_COLOURS[hat - 1],
    )


def make_identities(seed: int, code: int, subset: int, count: int, group_size: int) -> list[Identity]:
    """``count`` identities drawn in groups of ``group_size`` sharing outfit and body shape.

    Within a group, each member gets a distinct fine-cue combination (bag/shoes/hat), so those
    small cues are the only thing separating look-alikes.
    """
    people: list[Identity] = []
    for g in range(math.ceil(count / group_size)):
        rng = _rng(seed, code, _GROUP, subset, g)
        outfit = _outfit(rng)
        n = min(group_size, count - g * group_size)
        for fine in rng.choice(_NUM_FINE, size=n, replace=False):
            people.append(Identity(**outfit, **_fine_cues(int(fine))))
    return people


def random_identity(rng: np.random.Generator) -> Identity:
    """A one-off person (MARS distractors): outfit and fine cues drawn independently."""
    return Identity(**_outfit(rng), **_fine_cues(int(rng.integers(_NUM_FINE))))


# ----------------------------------------------------------------------------- cameras


@dataclass(frozen=True)
class CameraStyle:
    """How one camera sees the world: background plate and photometric distortions."""

    background: np.ndarray  # (H + 2*pad, W + 2*pad, 3) uint8, cropped per frame
    pad: int
    scale: np.ndarray  # (H, W, 3): contrast x colour cast x exposure x illumination gradient ...
    offset: np.ndarray  # (H, W, 3): ... so the whole photometric model is one multiply-add
    blur: int  # passes of a [1, 2, 1]/4 filter (sigma ~0.7 px each)
    noise: np.ndarray | None  # (K, H, W, 3) bank of sensor-noise frames, drawn per frame
    quant: int  # output quantisation step: 1 for JPEG; 4 for PNG, keeping lossless frames small
    occluder: tuple[int, int, int]


def camera_style(seed: int, code: int, cam: int, size: tuple[int, int], *, noise: float, quant: int = 1) -> CameraStyle:
    """Draw camera ``cam``'s look: colour cast, exposure, blur and a textured background."""
    rng = _rng(seed, code, _CAMERA, cam)
    h, w = size
    pad = 12
    bh, bw = h + 2 * pad, w + 2 * pad
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    wall = rng.uniform(60, 200, 3)
    floor = rng.uniform(50, 170, 3)
    horizon = rng.uniform(0.35, 0.6) * bh
    img = np.where((yy < horizon)[..., None], wall, floor).astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # floor tiles
        period = rng.integers(10, 20)
        lines = ((yy % period) < 2) | ((xx % period) < 2)
        img[lines & (yy >= horizon)] *= 0.75
    elif kind == 1:  # wall panels / windows
        period = rng.integers(14, 30)
        panel = ((xx % period) < period * 0.55) & (yy < horizon * 0.8) & (yy > horizon * 0.15)
        img[panel] = img[panel] * 0.5 + rng.uniform(40, 220, 3) * 0.5
    else:  # diagonal stripes on the floor
        period = rng.integers(12, 24)
        stripes = ((xx + yy) % period) < period / 3
        img[stripes & (yy >= horizon)] *= 1.2
    # Soft blobs: uneven lighting and clutter; smooth so PNG frames stay small.
    for _ in range(3):
        cy, cx, r = rng.uniform(0, bh), rng.uniform(0, bw), rng.uniform(8, 25)
        img += (rng.uniform(-35, 35, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None])
    light_dir = rng.uniform(-1, 1, 2)
    ly, lx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 + 0.25 * (light_dir[0] * (ly / h - 0.5) + light_dir[1] * (lx / w - 0.5))
    gain = rng.uniform(0.72, 1.28, 3) * rng.uniform(0.75, 1.2)  # colour cast x exposure
    contrast = rng.uniform(0.75, 1.1)
    scale = (contrast * gain * light[..., None]).astype(np.float32)
    offset = ((128.0 - 128.0 * contrast) * gain * light[..., None]).astype(np.float32)
    sigma = noise * rng.uniform(0.5, 1.0)
    bank = (rng.standard_normal((16, h, w, 3)) * sigma).astype(np.float32) if sigma > 0 else None
    return CameraStyle(
        background=np.clip(img, 0, 255).astype(np.uint8), pad=pad, scale=scale, offset=offset,
        blur=int(rng.integers(0, 3)), noise=bank, quant=int(quant), occluder=_colour(rng.integers(30, 200, 3)),
    )


# ----------------------------------------------------------------------------- rendering


def _shade(c: Sequence[int], f: float) -> tuple[int, int, int]:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def render_person(draw: ImageDraw.ImageDraw, person: Identity, cx: float, feet: float, tall: float,
                  phase: float, swing: float, visible: dict[str, bool]) -> None:
    """Draw one pose of ``person`` (feet at ``feet``, ``tall`` pixels high) with PIL primitives.

    ``visible`` says which fine cues are discernible in this frame ("bag", "hat", "shoes").
    """
    head_r = 0.065 * tall
    top = feet - tall - abs(math.sin(phase)) * 0.012 * tall  # vertical bob of the gait
    neck = top + 2 * head_r
    hip = feet - 0.47 * tall
    half = 0.13 * tall * person.width
    leg_w = max(2, int(0.085 * tall * person.width))
    arm_w = max(2, int(0.06 * tall * person.width))
    leg_len = feet - hip
    arm_len = 0.36 * tall
    s = math.sin(phase) * swing

    def limb(x0, y0, length, angle, width, colour):
        x1, y1 = x0 + length * math.sin(angle), y0 + length * math.cos(angle)
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=width)
        return x1, y1

    far, near = _shade(person.top, 0.7), _shade(person.top, 0.88)
    # Far side first (darker), then the body, then the near side: a cheap depth order.
    limb(cx + 0.45 * half, neck + 2, arm_len, -0.6 * s, arm_w, far)
    fx, fy = limb(cx + 0.35 * half, hip, leg_len, -s, leg_w, _shade(person.bottom, 0.7))
    shoes = person.shoes if visible["shoes"] else _SHADOW
    draw.ellipse([fx - leg_w * 0.9, fy - leg_w * 0.5, fx + leg_w * 0.9, fy + leg_w * 0.4], fill=_shade(shoes, 0.85))
    draw.rectangle([cx - half, neck, cx + half, hip + 2], fill=person.top)
    if person.pattern == "hstripes":
        period = max(4, int(0.06 * tall))
        for y in np.arange(neck + period / 2, hip, period):
            draw.rectangle([cx - half, y, cx + half, min(y + period / 2, hip + 2)], fill=person.pattern_colour)
    elif person.pattern == "vstripes":
        period = max(4, int(0.6 * half))
        for x in np.arange(cx - half + period / 2, cx + half, period):
            draw.rectangle([x, neck, min(x + period / 2, cx + half), hip + 2], fill=person.pattern_colour)
    elif person.pattern == "twotone":
        draw.rectangle([cx - half, neck + 0.55 * (hip - neck), cx + half, hip + 2], fill=person.pattern_colour)
    fx, fy = limb(cx - 0.35 * half, hip, leg_len, s, leg_w, person.bottom)
    draw.ellipse([fx - leg_w * 0.9, fy - leg_w * 0.5, fx + leg_w * 0.9, fy + leg_w * 0.4], fill=shoes)
    hx, hy = limb(cx - 0.45 * half, neck + 2, arm_len, 0.6 * s, arm_w, near)
    draw.ellipse([hx - arm_w * 0.6, hy - arm_w * 0.6, hx + arm_w * 0.6, hy + arm_w * 0.6], fill=person.skin)
    draw.ellipse([cx - head_r, top, cx + head_r, top + 2 * head_r], fill=person.skin)
    if person.hat is not None and visible["hat"]:
        draw.rectangle([cx - head_r * 1.1, top - head_r * 0.35, cx + head_r * 1.1, top + head_r * 0.6], fill=person.hat)
        draw.rectangle([cx - head_r * 1.6, top + head_r * 0.45, cx + head_r * 1.3, top + head_r * 0.75], fill=person.hat)
    else:
        draw.chord([cx - head_r, top, cx + head_r, top + 2 * head_r], 180, 360, fill=person.hair)
    if person.bag is not None and visible["bag"]:
        side = person.bag_side
        bx = cx + side * (half + 0.02 * tall)
        bw, bh = 0.11 * tall, 0.14 * tall
        draw.line([(cx - side * half * 0.7, neck + 1), (bx, hip - 0.05 * tall)], fill=_shade(person.bag, 0.8), width=2)
        draw.rectangle([min(bx, bx + side * bw), hip - 0.08 * tall, max(bx, bx + side * bw), hip - 0.08 * tall + bh],
                       fill=person.bag)


def _intermittent(rng: np.random.Generator, length: int, p_visible: float, mean_run: float) -> np.ndarray:
    """Per-frame visibility as alternating runs (a cue appears and disappears in spells).

    Forces at least one visible and one hidden frame when ``length >= 2``: the point of these
    cues is that they are present in only part of a tracklet.
    """
    flags = np.empty(length, dtype=bool)
    state = bool(rng.random() < p_visible)
    t = 0
    while t < length:
        run = 1 + int(rng.geometric(1.0 / (mean_run * (p_visible if state else 1 - p_visible) * 2)))
        flags[t:t + run] = state
        t += run
        state = not state
    if length >= 2 and (flags.all() or not flags.any()):
        width = int(rng.integers(1, length))  # 1..length-1 frames, so both states remain
        start = int(rng.integers(0, length - width + 1))
        flags[start:start + width] = ~flags[start:start + width]
    return flags


def render_tracklet(person: Identity | None, style: CameraStyle, length: int, rng: np.random.Generator,
                    size: tuple[int, int] = (128, 64), *, partial: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``length`` frames of ``person`` walking in front of camera ``style``.

    Returns ``(frames, visible)``: frames ``(T, H, W, 3)`` uint8 and per-frame boolean flags
    ``visible["bag"|"hat"|"shoes"|"occluder"]`` (a cue the person lacks is never visible).
    ``person=None`` renders background only; ``partial`` renders a badly cropped detection
    (both are MARS junk).
    """
    h, w = size
    visible = {
        "bag": _intermittent(rng, length, 0.55, 4.0) & (person is not None and person.bag is not None),
        "hat": _intermittent(rng, length, 0.6, 5.0) & (person is not None and person.hat is not None),
        "shoes": _intermittent(rng, length, 0.6, 3.0),
        "occluder": np.zeros(length, dtype=bool),
    }
    t = np.arange(length, dtype=np.float64)
    # Gait, misalignment, scale drift, background pan: all per-tracklet random, per-frame smooth.
    phase = rng.uniform(0, 2 * math.pi) + t * 2 * math.pi / rng.uniform(7, 13)
    swing = rng.uniform(0.25, 0.45)
    scale = np.linspace(rng.uniform(0.82, 1.02), rng.uniform(0.82, 1.02), length)
    cx = w / 2 + rng.uniform(-3, 3) + rng.normal(0, 1.3, length)
    feet = h - 3 + rng.normal(0, 1.3, length)
    if partial:
        scale = scale * rng.uniform(1.4, 1.9)
        cx = cx + rng.choice([-1, 1]) * w * rng.uniform(0.25, 0.45)
    span = 2 * style.pad
    oy = np.clip(np.round(rng.uniform(0, span) + t * rng.uniform(-0.3, 0.3)), 0, span).astype(int)
    ox = np.clip(np.round(rng.uniform(0, span) + t * rng.uniform(-0.6, 0.6)), 0, span).astype(int)
    occluder = None
    if rng.random() < 0.3:
        kind = "pole" if rng.random() < 0.5 else "passer"
        direction = rng.choice([-1, 1])
        x0 = -15.0 if direction > 0 else w + 15.0
        speed = direction * (w + 30) / max(length, 2) * rng.uniform(0.8, 1.6)
        occluder = (kind, x0 + rng.uniform(-10, 10), speed, rng.uniform(4, 9), _colour(rng.integers(20, 160, 3)))
    frames = np.empty((length, h, w, 3), dtype=np.uint8)
    for i in range(length):
        img = Image.fromarray(style.background[oy[i]:oy[i] + h, ox[i]:ox[i] + w])
        draw = ImageDraw.Draw(img)
        if person is not None:
            render_person(draw, person, cx[i], feet[i], 0.82 * h * person.height * scale[i], phase[i], swing,
                          {k: bool(v[i]) for k, v in visible.items()})
        if occluder is not None:
            kind, x0, speed, width, colour = occluder
            x = x0 + speed * i
            if kind == "pole":
                draw.rectangle([x, 0, x + width, h], fill=style.occluder)
            else:  # a passer-by's blurred shoulder and arm in the foreground
                draw.ellipse([x - 2.2 * width, h * 0.35, x + 2.2 * width, h * 1.1], fill=colour)
            visible["occluder"][i] = -2.2 * width < x < w + 2.2 * width
        frames[i] = np.asarray(img)
    return apply_camera(frames, style, rng), visible


def _blur_pass(x: np.ndarray, axis: int) -> np.ndarray:
    """One [1, 2, 1]/4 pass along ``axis`` (edge pixels replicated): cheap separable blur."""
    def sl(a, b):
        return (slice(None),) * axis + (slice(a, b),)

    y = x * 0.5
    y[sl(1, None)] += 0.25 * x[sl(None, -1)]
    y[sl(None, -1)] += 0.25 * x[sl(1, None)]
    y[sl(None, 1)] += 0.25 * x[sl(None, 1)]
    y[sl(-1, None)] += 0.25 * x[sl(-1, None)]
    return y


def apply_camera(frames: np.ndarray, style: CameraStyle, rng: np.random.Generator) -> np.ndarray:
    """Camera blur, contrast, colour cast, exposure, illumination and noise on a whole tracklet at once."""
    x = frames.astype(np.float32)
    for _ in range(style.blur):
        x = _blur_pass(_blur_pass(x, 1), 2)
    x *= style.scale
    x += style.offset
    if style.noise is not None:
        x += style.noise[rng.integers(0, len(style.noise), size=len(x))]
    if style.quant > 1:
        x //= style.quant
        x *= style.quant
        x += style.quant // 2
    np.clip(x, 0, 255, out=x)
    x += 0.5  # round half up on the cast below
    return x.astype(np.uint8)


def _png(frame: np.ndarray) -> bytes:
    """A standard RGB PNG with the Paeth filter on every row and run-length deflate.

    Written by hand because PIL's adaptive filtering + default deflate costs ~1 ms per frame,
    which dominated generation; this is ~5x faster for ~10% larger files, and deterministic.
    """
    h, w, _ = frame.shape
    r = frame.reshape(h, w * 3).astype(np.int16)
    a = np.zeros_like(r)
    a[:, 3:] = r[:, :-3]
    b = np.zeros_like(r)
    b[1:] = r[:-1]
    c = np.zeros_like(r)
    c[1:, 3:] = r[:-1, :-3]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    data = np.empty((h, w * 3 + 1), dtype=np.uint8)
    data[:, 0] = 4  # Paeth
    data[:, 1:] = (r - pred).astype(np.uint8)
    z = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = z.compress(data.tobytes()) + z.flush()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _encode(frame: np.ndarray, fmt: str) -> bytes:
    if fmt == "png":
        return _png(frame)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _write_frames(folder: Path, names: Sequence[str], frames: np.ndarray, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(names, frames):
        (folder / name).write_bytes(_encode(frame, fmt))


def _savemat(path: Path, mdict: dict) -> None:
    """scipy.io.savemat with the header's creation time replaced, so files are byte-identical."""
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, mdict)
    data = bytearray(buf.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: grl.data.synthetic".ljust(116)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


def _length(rng: np.random.Generator, lo: int, hi: int) -> int:
    """Tracklet length in [lo, hi], skewed towards short ones (mean ~ lo + (hi - lo) / 3) as real tracks are."""
    return lo + int((hi - lo + 1) * rng.random() ** 2)


def _progress(items: Iterable, total: int, desc: str, progress: bool | None):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; stay usable without it
        return items
    return tqdm(items, total=total, desc=desc, unit="id", disable=None if progress is None else not progress, leave=False)


# ----------------------------------------------------------------------------- writers


def _mars_pids(seed: int, sizes: dict) -> dict[str, list[int]]:
    """The MARS-like set's train and test pids, each list in the order identities are drawn."""
    n_train, n_test = sizes["num_train_ids"], sizes["num_test_ids"]
    lay = _rng(seed, _CODES["mars"], _LAYOUT)
    # Real MARS pids are sparse and train/test interleave; mimic that so loaders must relabel.
    pids = np.sort(lay.choice(np.arange(1, 2 * (n_train + n_test) + 1), n_train + n_test, replace=False))
    is_train = np.zeros(len(pids), dtype=bool)
    is_train[lay.choice(len(pids), n_train, replace=False)] = True
    return {"train": [int(p) for p in pids[is_train]], "test": [int(p) for p in pids[~is_train]]}


def _mars_people(seed: int, sizes: dict) -> dict[str, list[tuple[int, Identity]]]:
    code = _CODES["mars"]
    pids = _mars_pids(seed, sizes)
    return {subset: list(zip(pids[subset], make_identities(seed, code, k, len(pids[subset]), sizes["group_size"])))
            for k, subset in enumerate(("train", "test"))}


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
    code = _CODES["mars"]
    size = (sizes["height"], sizes["width"])
    cams = sizes["num_cams"]
    styles = [camera_style(seed, code, c, size, noise=3.0) for c in range(cams)]
    people = _mars_people(seed, sizes)
    # Plans: (pid, cam 0-based, identity, rng key); rendering happens in pid order below.
    plans: dict[str, list] = {"train": [], "test": []}
    for subset, members in people.items():
        for pid, person in members:
            r = _rng(seed, code, _IDENTITY, int(pid))
            k = int(r.integers(sizes["min_cams_per_id"], sizes["max_cams_per_id"] + 1))
            for cam in sorted(r.choice(cams, size=min(k, cams), replace=False).tolist()):
                n = 1 + int(r.binomial(sizes["max_tracklets_per_cam"] - 1, 0.3))
                for j in range(n):
                    plans[subset].append((int(pid), cam, person, (_TRACKLET, int(pid), cam, j)))
    for j in range(sizes["num_distractors"]):
        r = _rng(seed, code, _DISTRACTOR, j)
        plans["test"].append((0, int(r.integers(cams)), random_identity(r), (_DISTRACTOR, j, 1)))
    for j in range(sizes["num_junk"]):
        r = _rng(seed, code, _JUNK, j)
        plans["test"].append((-1, int(r.integers(cams)), random_identity(r) if r.random() < 0.6 else None, (_JUNK, j, 1)))

    counts = {}
    for subset in ("train", "test"):
        folder = root / f"bbox_{subset}"
        plans[subset].sort(key=lambda p: (p[0], p[1]))  # stable: keeps tracklet order within (pid, cam)
        names_all: list[str] = []
        rows: list[list[int]] = []
        next_t: dict[tuple[int, int], int] = {}
        pid_of_row: list[int] = []
        for pid, cam, person, key in _progress(plans[subset], len(plans[subset]), f"mars {subset}", progress):
            r = _rng(seed, code, *key)
            length = _length(r, sizes["min_len"], sizes["max_len"])
            frames, _ = render_tracklet(person, styles[cam], length, r, size, partial=pid == -1 and person is not None)
            tnum = next_t[(pid, cam)] = next_t.get((pid, cam), 0) + 1
            tag = "00-1" if pid == -1 else f"{pid:04d}"
            names = [f"{tag}C{cam + 1}T{tnum:04d}F{f + 1:03d}.jpg" for f in range(length)]
            _write_frames(folder / tag, names, frames, "jpg")
            rows.append([len(names_all) + 1, len(names_all) + length, pid, cam + 1])
            pid_of_row.append(pid)
            names_all.extend(names)
        (root / "info").mkdir(parents=True, exist_ok=True)
        (root / "info" / f"{subset}_name.txt").write_text("".join(n + "\n" for n in names_all))
        _savemat(root / "info" / f"tracks_{subset}_info.mat", {f"track_{subset}_info": np.array(rows, dtype=np.float64)})
        counts[f"{subset}_tracklets"] = len(rows)
        counts[f"{subset}_frames"] = len(names_all)
        if subset == "test":
            # One query per (identity, camera), as MARS does; every test identity has >= 2 cameras.
            qr = _rng(seed, code, _LAYOUT, 1)
            by_pid_cam: dict[tuple[int, int], list[int]] = {}
            for i, row in enumerate(rows):
                if row[2] > 0:
                    by_pid_cam.setdefault((row[2], row[3]), []).append(i + 1)
            query = sorted(int(qr.choice(v)) for _, v in sorted(by_pid_cam.items()))
            _savemat(root / "info" / "query_IDX.mat", {"query_IDX": np.array(query, dtype=np.float64)})
            counts["query_tracklets"] = len(query)
            counts["distractor_tracklets"] = sum(p == 0 for p in pid_of_row)
            counts["junk_tracklets"] = sum(p == -1 for p in pid_of_row)
    counts["train_ids"], counts["test_ids"] = len(people["train"]), len(people["test"])
    return counts


def write_ilidsvid(root: Path, seed: int, sizes: dict, progress: bool | None = None) -> dict:
    """iLIDS-VID layout: i-LIDS-VID/sequences/cam{1,2}/personNNN/*.png + the ls_set split file."""
    code = _CODES["ilidsvid"]
    size = (sizes["height"], sizes["width"])
    n = sizes["num_ids"]
    styles = [camera_style(seed, code, c, size, noise=0.0, quant=4) for c in range(2)]
    lay = _rng(seed, code, _LAYOUT)
    # The real set skips some person numbers (300 people, numbers up to 319).
    numbers = np.sort(lay.choice(np.arange(1, n + n // 15 + 2), n, replace=False))
    people = make_identities(seed, code, 0, n, sizes["group_size"])
    frames_total = 0
    for number, person in _progress(zip(numbers, people), n, "ilidsvid", progress):
        for cam in range(2):
            r = _rng(seed, code, _TRACKLET, int(number), cam)
            length = _length(r, sizes["min_len"], sizes["max_len"])
            start = int(r.integers(0, 2000))
            frames, _ = render_tracklet(person, styles[cam], length, r, size)
            folder = root / "i-LIDS-VID" / "sequences" / f"cam{cam + 1}" / f"person{number:03d}"
            names = [f"cam{cam + 1}_person{number:03d}_{start + f:05d}.png" for f in range(length)]
            _write_frames(folder, names, frames, "png")
            frames_total += length
    ls_set = np.stack([lay.permutation(n) + 1 for _ in range(sizes["num_splits"])]).astype(np.float64)
    _savemat(root / "train-test people splits" / "train_test_splits_ilidsvid.mat", {"ls_set": ls_set})
    return {"ids": n, "tracklets": 2 * n, "frames": frames_total, "splits": sizes["num_splits"]}


def write_prid2011(root: Path, seed: int, sizes: dict, progress: bool | None = None) -> dict:
    """PRID2011 layout: prid_2011/multi_shot/cam_{a,b}/person_NNNN/NNNN.png (+ splits_prid2011.json).

    As in the real set, person_0001..person_<num_both> are the same people in both cameras;
    higher numbers are different people in cam_a and cam_b.
    """
    code = _CODES["prid2011"]
    size = (sizes["height"], sizes["width"])
    na, nb, both = sizes["num_cam_a"], sizes["num_cam_b"], sizes["num_both"]
    if not both <= min(na, nb):
        raise ValueError(f"prid2011: num_both={both} must be <= num_cam_a={na} and num_cam_b={nb}")
    styles = [camera_style(seed, code, c, size, noise=0.0, quant=4) for c in range(2)]
    people = make_identities(seed, code, 0, na + nb - both, sizes["group_size"])
    # (cam, person number, identity index): cam_b-only people come after cam_a-only ones.
    plan = [(0, p, p - 1) for p in range(1, na + 1)] + [(1, p, p - 1 if p <= both else na + p - both - 1) for p in range(1, nb + 1)]
    plan.sort(key=lambda c: (c[2], c[0]))
    length_of: dict[tuple[int, int], int] = {}
    for cam, number, idx in _progress(plan, len(plan), "prid2011", progress):
        r = _rng(seed, code, _TRACKLET, number, cam)
        if r.random() < sizes["short_fraction"]:
            length = _length(r, 5, 21)  # the paper drops sequences with <= 21 frames
        else:
            length = _length(r, sizes["min_len"], sizes["max_len"])
        frames, _ = render_tracklet(people[idx], styles[cam], length, r, size)
        folder = root / "prid_2011" / "multi_shot" / f"cam_{'ab'[cam]}" / f"person_{number:04d}"
        _write_frames(folder, [f"{f + 1:04d}.png" for f in range(length)], frames, "png")
        length_of[(cam, number)] = length
    eligible = [p for p in range(1, both + 1) if min(length_of[(0, p)], length_of[(1, p)]) > 21]
    counts = {"cam_a": na, "cam_b": nb, "both": both, "eligible": len(eligible), "frames": sum(length_of.values())}
    if sizes["write_splits"]:
        lay = _rng(seed, code, _LAYOUT)
        splits = []
        for _ in range(sizes["num_splits"]):
            perm = [eligible[i] for i in lay.permutation(len(eligible))]
            half = len(perm) // 2
            splits.append({"train": [f"person_{p:04d}" for p in sorted(perm[:half])],
                           "test": [f"person_{p:04d}" for p in sorted(perm[half:])]})
        (root / "splits_prid2011.json").write_text(json.dumps(splits, indent=1) + "\n")
        counts["splits"] = sizes["num_splits"]
    return counts


_WRITERS = {"mars": write_mars, "ilidsvid": write_ilidsvid, "prid2011": write_prid2011}

# ----------------------------------------------------------------------------- public API


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown synthetic dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return name


def resolve_sizes(name: str, **sizes) -> dict:
    """The defaults for ``name`` updated with ``sizes``; unknown keys raise ValueError listing valid ones."""
    defaults = DEFAULT_SIZES[_check_name(name)]
    unknown = sorted(set(sizes) - set(defaults))
    if unknown:
        raise ValueError(f"unknown size parameter(s) {unknown} for synthetic {name!r}; valid: {sorted(defaults)}")
    out = dict(defaults)
    for k, v in sizes.items():
        out[k] = type(defaults[k])(v)
    if out.get("min_len", 1) > out.get("max_len", 1) or out.get("min_len", 1) < 1:
        raise ValueError(f"synthetic {name!r}: need 1 <= min_len <= max_len, got {out['min_len']}..{out['max_len']}")
    if name == "mars" and not 2 <= out["min_cams_per_id"] <= out["max_cams_per_id"] <= out["num_cams"]:
        raise ValueError("synthetic 'mars': need 2 <= min_cams_per_id <= max_cams_per_id <= num_cams")
    return out


def _request(name: str, seed: int, sizes: dict) -> dict:
    return {"generator": GENERATOR, "version": GENERATOR_VERSION, "name": name, "seed": int(seed), "sizes": sizes}


def data_version(name: str, seed: int = 0, **sizes) -> str:
    """A short id of what ``generate(name, ..., seed, **sizes)`` writes with this generator version.

    Runs on synthetic data carry it in their configuration (``Config.data_version``), so a
    regenerated dataset never passes for the one an old result was measured on.
    """
    request = _request(name, seed, resolve_sizes(name, **sizes))
    digest = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:10]
    return f"synthetic-v{GENERATOR_VERSION}-{digest}"


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The manifest of a generated dataset at ``root``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(root) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def generate(name: str, root: str | os.PathLike, seed: int = 0, *, overwrite: bool = False,
             progress: bool | None = None, **sizes) -> Path:
    """Generate synthetic dataset ``name`` into ``root`` (skipped when ``root`` already holds it).

    ``sizes`` override :data:`DEFAULT_SIZES` [name]. A non-empty ``root`` holding anything else
    raises ValueError, unless ``overwrite=True`` and ``root`` holds a (different) generated dataset,
    which is then replaced. Files are built in a temporary sibling folder and renamed into place.
    """
    sizes = resolve_sizes(name, **sizes)
    root = Path(root).expanduser()
    request = _request(name, seed, sizes)
    existing = read_manifest(root)
    if existing is not None and {k: existing.get(k) for k in request} == request:
        return root
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            what = (f"a different synthetic dataset ({existing.get('name')}, seed {existing.get('seed')}, "
                    f"version {existing.get('version')})" if existing else "files that are not a generated dataset")
            raise ValueError(f"{root} already holds {what}; asked for {name!r} seed {seed} with sizes {sizes}. "
                             "Use another root, or overwrite=True to regenerate.")
        if existing is None or existing.get("generator") != GENERATOR:
            raise ValueError(f"refusing to overwrite {root}: it has no {GENERATOR} manifest.json, so it may hold "
                             "data this generator did not write; empty or remove it yourself.")
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_partials(root)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.partial-{os.getpid()}-"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: the data should be readable like any folder
        t0 = time.perf_counter()
        fault_point("synthetic-writing")
        counts = _WRITERS[name](tmp, int(seed), sizes, progress)
        atomic_write_json(tmp / "manifest.json", {**request, "counts": counts, "format": _FORMATS[name]})
        log.debug("synthetic %s generated in %.1fs", name, time.perf_counter() - t0)
        if root.exists():
            if read_manifest(root) == read_manifest(tmp):  # a concurrent run finished the same thing first
                shutil.rmtree(tmp)
                return root
            if any(root.iterdir()):
                if not overwrite:  # someone else filled root meanwhile: never delete what we did not check
                    raise ValueError(f"{root} was filled by another process while generating {name!r}; not replacing it")
                shutil.rmtree(root)  # overwrite=True on a generated dataset (checked above)
            else:
                root.rmdir()
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_dead_partials(root: Path) -> None:
    """Remove the half-written ``.<name>.partial-<pid>-*`` folders of processes that no longer exist
    (a generation killed part-way); those of a live process are another generation in progress."""
    from grl.utils import pid_alive

    for folder in root.parent.glob(f".{root.name}.partial-*"):
        pid = folder.name[len(f".{root.name}.partial-"):].split("-")[0]
        if folder.is_dir() and (not pid.isdigit() or not pid_alive(int(pid))):
            log.info("removing %s, left by a generation that was killed", folder)
            shutil.rmtree(folder, ignore_errors=True)


_FORMATS = {
    "mars": "MARS: info/{train,test}_name.txt, info/tracks_{train,test}_info.mat, info/query_IDX.mat, bbox_{train,test}/",
    "ilidsvid": "iLIDS-VID: i-LIDS-VID/sequences/cam{1,2}/personNNN/, train-test people splits/train_test_splits_ilidsvid.mat",
    "prid2011": "PRID2011: prid_2011/multi_shot/cam_{a,b}/person_NNNN/, splits_prid2011.json",
}


def default_root(name: str) -> Path:
    """Where :func:`ensure_synthetic` puts dataset ``name`` by default."""
    return data_dir() / "synthetic" / _check_name(name)


def ensure_synthetic(name: str, root: str | os.PathLike | None = None, seed: int = 0, **sizes) -> Path:
    """Return the root of synthetic dataset ``name``, generating it first if needed (idempotent).

    A dataset at ``root`` written by an *older version* of this generator for the same request
    is a stale cache and is regenerated; any other mismatch raises (see :func:`generate`).
    """
    root = default_root(name) if root is None else Path(root).expanduser()
    request = _request(name, seed, resolve_sizes(name, **sizes))
    existing = read_manifest(root)
    if existing is not None and {k: existing.get(k) for k in request} == request:
        return root
    stale = existing is not None and all(existing.get(k) == request[k] for k in request if k != "version")
    log.info("generating synthetic %s dataset (seed %d) into %s%s", name, seed, root,
             " (replacing one from an older generator version)" if stale else "")
    t0 = time.perf_counter()
    out = generate(name, root, seed, overwrite=stale, **sizes)
    log.info("synthetic %s ready in %.1fs: %s", name, time.perf_counter() - t0, out)
    return out


# ----------------------------------------------------------------------------- contact sheet


def _frame_number(path: Path) -> int:
    m = re.search(r"(\d+)\D*$", path.stem)
    return int(m.group(1)) if m else 0


def _tracklets_by_identity(root: Path, name: str) -> dict[str, dict[str, list[list[Path]]]]:
    """{identity label: {camera label: [frame paths of each tracklet]}} read straight off the layout."""
    out: dict[str, dict[str, list[list[Path]]]] = {}
    if name == "mars":
        groups: dict[tuple[str, str, str], list[Path]] = {}
        for folder in sorted((root / "bbox_train").iterdir()):
            for f in sorted(folder.glob("*.jpg")):
                m = re.match(r"(\d{4})C(\d)T(\d{4})F\d{3}", f.name)
                if m:
                    groups.setdefault(m.groups(), []).append(f)
        for (pid, cam, _), frames in sorted(groups.items()):
            out.setdefault(pid, {}).setdefault(cam, []).append(frames)
    elif name == "ilidsvid":
        base = root / "i-LIDS-VID" / "sequences"
        for cam in ("cam1", "cam2"):
            for person in sorted((base / cam).iterdir()):
                out.setdefault(person.name, {})[cam] = [sorted(person.glob("*.png"), key=_frame_number)]
    else:
        base = root / "prid_2011" / "multi_shot"
        # Only person_0001..person_<both> are the same people in both cameras (200 in the real set).
        both = int(((read_manifest(root) or {}).get("counts") or {}).get("both", 200))
        for cam in ("cam_a", "cam_b"):
            for person in sorted((base / cam).iterdir()):
                if re.fullmatch(r"person_\d{4}", person.name) and int(person.name[7:]) <= both:
                    out.setdefault(person.name, {})[cam] = [sorted(person.glob("*.png"), key=_frame_number)]
    return {k: v for k, v in out.items() if len(v) >= 2}


def contact_sheet(root: str | os.PathLike, name: str, num_ids: int = 4, frames_per_tracklet: int = 4,
                  seed: int = 0) -> Image.Image:
    """A grid of a few identities across cameras: one row per (identity, camera), labelled.

    Works on any dataset in the layout of ``name`` (generated or real); frames are evenly
    spaced over the first tracklet of each (identity, camera), and resized to the first frame's size.
    """
    root = Path(root)
    index = _tracklets_by_identity(root, _check_name(name))
    if not index:
        raise ValueError(f"no identity seen by two cameras under {root} ({_FORMATS[name]})")
    ids = sorted(index)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(ids), size=min(num_ids, len(ids)), replace=False).tolist())
    rows = [(ids[i], cam, index[ids[i]][cam][0]) for i in chosen for cam in sorted(index[ids[i]])]
    with Image.open(rows[0][2][0]) as first:
        fw, fh = first.size
    label_w, gap = 110, 2
    sheet = Image.new("RGB", (label_w + frames_per_tracklet * (fw + gap), len(rows) * (fh + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (pid, cam, frames) in enumerate(rows):
        y = r * (fh + gap)
        draw.text((4, y + fh // 2 - 12), f"id {pid}", fill=(0, 0, 0))
        draw.text((4, y + fh // 2 + 2), cam if cam.startswith("cam") else f"cam {cam}", fill=(90, 90, 90))
        picks = np.linspace(0, len(frames) - 1, frames_per_tracklet).round().astype(int)
        for c, k in enumerate(picks):
            with Image.open(frames[k]) as im:
                sheet.paste(im.convert("RGB").resize((fw, fh)), (label_w + c * (fw + gap), y))
    return sheet


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grl.data.synthetic [--dataset all] [--root DIR] [--seed N] [--contact-sheet PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m grl.data.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument("--root", default=None,
                        help="dataset root (with --dataset all: parent folder of one folder per dataset); "
                             "default <data_dir>/synthetic/<name>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace a different generated dataset at the root")
    parser.add_argument("--contact-sheet", default=None, metavar="PATH",
                        help="also save a contact sheet (PNG); with --dataset all, one per dataset as PATH_<name>.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = DATASETS if args.dataset == "all" else (args.dataset,)
    for name in names:
        root = None if args.root is None else (Path(args.root) / name if args.dataset == "all" else Path(args.root))
        root = root if root is not None else default_root(name)
        t0 = time.perf_counter()
        if args.overwrite:
            generate(name, root, args.seed, overwrite=True, progress=None)
        else:
            ensure_synthetic(name, root, args.seed)
        counts = (read_manifest(root) or {}).get("counts", {})
        print(f"{name}: {root} ({time.perf_counter() - t0:.1f}s) {json.dumps(counts)}")
        if args.contact_sheet:
            path = Path(args.contact_sheet)
            if len(names) > 1:
                path = path.with_name(f"{path.stem}_{name}{path.suffix or '.png'}")
            path.parent.mkdir(parents=True, exist_ok=True)
            contact_sheet(root, name).save(path)
            print(f"contact sheet: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
