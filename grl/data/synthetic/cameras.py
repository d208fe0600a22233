"""Cameras: how each one sees the world (background, colour cast, exposure, blur, noise).

A :class:`CameraStyle` is drawn once per camera; :func:`apply_camera` applies its photometric
model to a whole rendered tracklet at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grl.data.synthetic.appearance import rgb
from grl.data.synthetic.seeds import CAMERA, rng_for


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


def camera_style(
    seed: int, code: int, cam: int, size: tuple[int, int], *, noise: float, quant: int = 1, strength: float = 1.0
) -> CameraStyle:
    """Draw camera ``cam``'s look: colour cast, exposure, blur and a textured background.

    ``strength`` scales how much cameras differ (a difficulty knob of the benchmark, README "Calibrating"):
    the colour cast, exposure and contrast's departure from neutral and the background's from mid-grey.
    1 is the generator's native look; the random draws are the same whatever it is."""
    rng = rng_for(seed, code, CAMERA, cam)
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
        img += rng.uniform(-35, 35, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    light_dir = rng.uniform(-1, 1, 2)
    ly, lx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 + 0.25 * (light_dir[0] * (ly / h - 0.5) + light_dir[1] * (lx / w - 0.5))
    gain = 1.0 + strength * (rng.uniform(0.72, 1.28, 3) * rng.uniform(0.75, 1.2) - 1.0)  # colour cast x exposure
    contrast = 1.0 + strength * (rng.uniform(0.75, 1.1) - 1.0)
    img = 128.0 + strength * (img - 128.0)
    scale = (contrast * gain * light[..., None]).astype(np.float32)
    offset = ((128.0 - 128.0 * contrast) * gain * light[..., None]).astype(np.float32)
    sigma = noise * rng.uniform(0.5, 1.0)
    bank = (rng.standard_normal((16, h, w, 3)) * sigma).astype(np.float32) if sigma > 0 else None
    return CameraStyle(
        background=np.clip(img, 0, 255).astype(np.uint8),
        pad=pad,
        scale=scale,
        offset=offset,
        blur=int(rng.integers(0, 3)),
        noise=bank,
        quant=int(quant),
        occluder=rgb(rng.integers(30, 200, 3)),
    )


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
