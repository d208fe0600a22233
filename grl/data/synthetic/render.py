"""Rendering: a procedurally drawn pedestrian walking through a camera's view, frame by frame.

:func:`render_person` draws one pose with PIL primitives; :func:`render_tracklet` renders a
whole tracklet (gait, misalignment, scale drift, background pan, occluders, intermittent cues)
and passes it through the camera (:func:`grl.data.synthetic.cameras.apply_camera`); its random draws
are :func:`plan_tracklet`'s, which can be made without drawing anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from grl.data.synthetic.appearance import SHOE_SHADOW, Identity, rgb
from grl.data.synthetic.cameras import CameraStyle, apply_camera


def _shade(c: Sequence[int], f: float) -> tuple[int, int, int]:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def render_person(
    draw: ImageDraw.ImageDraw,
    person: Identity,
    cx: float,
    feet: float,
    tall: float,
    phase: float,
    swing: float,
    visible: dict[str, bool],
) -> None:
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
    shoes = person.shoes if visible["shoes"] else SHOE_SHADOW
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
        draw.rectangle(
            [cx - head_r * 1.6, top + head_r * 0.45, cx + head_r * 1.3, top + head_r * 0.75], fill=person.hat
        )
    else:
        draw.chord([cx - head_r, top, cx + head_r, top + 2 * head_r], 180, 360, fill=person.hair)
    if person.bag is not None and visible["bag"]:
        side = person.bag_side
        bx = cx + side * (half + 0.02 * tall)
        bw, bh = 0.11 * tall, 0.14 * tall
        draw.line([(cx - side * half * 0.7, neck + 1), (bx, hip - 0.05 * tall)], fill=_shade(person.bag, 0.8), width=2)
        draw.rectangle(
            [min(bx, bx + side * bw), hip - 0.08 * tall, max(bx, bx + side * bw), hip - 0.08 * tall + bh],
            fill=person.bag,
        )


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
        flags[t : t + run] = state
        t += run
        state = not state
    if length >= 2 and (flags.all() or not flags.any()):
        width = int(rng.integers(1, length))  # 1..length-1 frames, so both states remain
        start = int(rng.integers(0, length - width + 1))
        flags[start : start + width] = ~flags[start : start + width]
    return flags


@dataclass(frozen=True)
class TrackletPlan:
    """Every random draw of one tracklet except the camera noise: what each frame will show.

    ``visible`` holds the per-frame flags of :func:`render_tracklet`; ``cx``/``feet``/``tall`` place the
    person in each frame (pixels); ``oy``/``ox`` crop the background; ``occluder`` is None or
    ``(kind, x0, speed, width, colour)``.
    """

    visible: dict[str, np.ndarray]
    phase: np.ndarray
    swing: float
    cx: np.ndarray
    feet: np.ndarray
    tall: np.ndarray
    oy: np.ndarray
    ox: np.ndarray
    occluder: tuple | None
    size: tuple[int, int]


def plan_tracklet(
    person: Identity | None,
    style: CameraStyle,
    length: int,
    rng: np.random.Generator,
    size: tuple[int, int] = (128, 64),
    *,
    partial: bool = False,
) -> TrackletPlan:
    """Draw the tracklet's cue visibility, motion and occluder from ``rng``, in :func:`render_tracklet`'s order.

    Split from the drawing so that the draws can be inspected (``grl.data.synthetic.cues``) without
    rendering; ``rng`` is left exactly where rendering continues with the camera noise.
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
        occluder = (kind, x0 + rng.uniform(-10, 10), speed, rng.uniform(4, 9), rgb(rng.integers(20, 160, 3)))
        for i in range(length):
            x = occluder[1] + occluder[2] * i
            visible["occluder"][i] = -2.2 * occluder[3] < x < w + 2.2 * occluder[3]
    height = 0.0 if person is None else person.height
    tall = np.array([0.82 * h * height * scale[i] for i in range(length)])
    return TrackletPlan(visible, phase, swing, cx, feet, tall, oy, ox, occluder, size)


def draw_occluder(draw: ImageDraw.ImageDraw, plan: TrackletPlan, i: int, pole_fill, passer_fill=None) -> None:
    """Draw frame ``i``'s occluder (if any); the fills may be overridden, e.g. to draw a mask."""
    if plan.occluder is None:
        return
    kind, x0, speed, width, colour = plan.occluder
    h = plan.size[0]
    x = x0 + speed * i
    if kind == "pole":
        draw.rectangle([x, 0, x + width, h], fill=pole_fill)
    else:  # a passer-by's blurred shoulder and arm in the foreground
        draw.ellipse(
            [x - 2.2 * width, h * 0.35, x + 2.2 * width, h * 1.1], fill=colour if passer_fill is None else passer_fill
        )


def draw_frame(
    person: Identity | None,
    plan: TrackletPlan,
    i: int,
    background: np.ndarray,
    occluder_fill=None,
    visible: dict[str, bool] | None = None,
) -> np.ndarray:
    """Frame ``i`` of ``plan`` before the camera, drawn over ``background`` (H x W x 3, uint8).

    ``visible`` overrides the plan's cue flags (to compare a frame with and without a cue);
    ``occluder_fill`` None leaves the occluder out.
    """
    img = Image.fromarray(background)
    draw = ImageDraw.Draw(img)
    if person is not None:
        flags = {k: bool(v[i]) for k, v in plan.visible.items()} if visible is None else visible
        render_person(draw, person, plan.cx[i], plan.feet[i], plan.tall[i], plan.phase[i], plan.swing, flags)
    if occluder_fill is not None:
        draw_occluder(draw, plan, i, occluder_fill)
    return np.asarray(img)


def render_tracklet(
    person: Identity | None,
    style: CameraStyle,
    length: int,
    rng: np.random.Generator,
    size: tuple[int, int] = (128, 64),
    *,
    partial: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``length`` frames of ``person`` walking in front of camera ``style``.

    Returns ``(frames, visible)``: frames ``(T, H, W, 3)`` uint8 and per-frame boolean flags
    ``visible["bag"|"hat"|"shoes"|"occluder"]`` (a cue the person lacks is never visible).
    ``person=None`` renders background only; ``partial`` renders a badly cropped detection
    (both are MARS junk). The draws are :func:`plan_tracklet`'s, then the camera's.
    """
    h, w = size
    plan = plan_tracklet(person, style, length, rng, size, partial=partial)
    frames = np.empty((length, h, w, 3), dtype=np.uint8)
    for i in range(length):
        background = style.background[plan.oy[i] : plan.oy[i] + h, plan.ox[i] : plan.ox[i] + w]
        frames[i] = draw_frame(person, plan, i, background, style.occluder)
    return apply_camera(frames, style, rng), plan.visible
