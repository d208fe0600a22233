"""Images and the figure scaffolding every plot shares: denormalising clips, activation maps, overlays, grids, saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from grl.data.transforms import IMAGENET_MEAN, IMAGENET_STD


# ----------------------------------------------------------------------------- arrays
def as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def denormalize(clip: torch.Tensor | np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Undo ImageNet normalisation: ``x * std + mean`` over the channel axis (-3).

    Works for ``(3, H, W)``, ``(T, 3, H, W)`` and ``(B, T, 3, H, W)``. Not clamped, so it is
    the exact inverse of ``(x - mean) / std``; image helpers clamp to [0, 1] when drawing.
    """
    x = torch.as_tensor(clip, dtype=torch.float32)
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"denormalize expects (..., 3, H, W), got shape {tuple(x.shape)}")
    shape = (3, 1, 1)
    return x * torch.tensor(std, dtype=x.dtype).view(shape) + torch.tensor(mean, dtype=x.dtype).view(shape)


def to_image(x: Any) -> np.ndarray:
    """Any single image -> ``(H, W, 3)`` uint8. A clip ``(T, 3, H, W)`` gives its first frame."""
    a = as_numpy(x)
    if a.ndim == 4:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"expected an image (3,H,W) / (H,W,3) or a clip (T,3,H,W), got shape {a.shape}")
    if a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def activation_map(memory: Any, normalize: bool = True) -> np.ndarray:
    """Channel activation map ``(h, w)`` of a feature map ``(C, h, w)``: mean_c of squared
    activations, min-max normalised to [0, 1] (a constant map gives zeros)."""
    m = as_numpy(memory).astype(np.float64)
    if m.ndim != 3:
        raise ValueError(f"activation_map expects (C, h, w), got shape {m.shape}")
    a = (m**2).mean(axis=0)
    return minmax(a) if normalize else a


def minmax(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def scale_maps(maps: np.ndarray, scale: str) -> np.ndarray:
    """(T, h, w) -> [0, 1]. "raw": values already in [0, 1] (e.g. R_t, a sigmoid) are kept;
    "clip": one min-max over all T maps (keeps differences between time steps);
    "frame": min-max per map (where each frame's pattern is shown, as in CAM figures)."""
    if scale == "raw":
        return np.clip(maps, 0.0, 1.0)
    if scale == "clip":
        return minmax(maps)
    if scale == "frame":
        return np.stack([minmax(m) for m in maps])
    raise ValueError(f"scale must be 'raw', 'clip' or 'frame', got {scale!r}")


def overlay(frame: Any, heat: Any, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heat map (h, w) in [0, 1] over an image; returns ``(H, W, 3)`` uint8.

    The map is upsampled bilinearly (align_corners=False, like the feature stride) to the
    frame size, coloured with ``cmap`` and blended: ``(1 - alpha) * frame + alpha * colour``.
    """
    img = to_image(frame).astype(np.float64) / 255.0
    h = torch.as_tensor(np.asarray(as_numpy(heat), dtype=np.float32))
    if h.ndim != 2:
        raise ValueError(f"overlay expects a heat map (h, w), got shape {tuple(h.shape)}")
    up = F.interpolate(h[None, None], size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    colour = matplotlib.colormaps[cmap](np.clip(up.numpy(), 0.0, 1.0))[..., :3]
    out = (1.0 - alpha) * img + alpha * colour
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- figures
def figure_grid(nrows: int, ncols: int, figsize: tuple[float, float], pad: float = 0.02):
    # Constrained layout (unlike tight_layout) makes room for a suptitle and copes with
    # fixed-aspect images; it runs at draw time.
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    fig.get_layout_engine().set(w_pad=pad, h_pad=pad, wspace=0.01, hspace=0.01)
    return fig, axes


def finish(fig: Figure, title: str | None) -> None:
    if title:
        fig.suptitle(title, fontsize=10)


def clean_axis(ax) -> None:
    # Keep the axes (not axis("off")) so row labels can live in the y-label.
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def show_clip(clip: Any, title: str | None = None, normalized: bool = True, cell: float = 1.1) -> Figure:
    """One row with the T frames of a clip (T,3,H,W); ``normalized``: ImageNet-normalised input."""
    x = denormalize(clip) if normalized else clip
    imgs = [to_image(f) for f in x]
    H, W = imgs[0].shape[:2]
    fig, axes = figure_grid(1, len(imgs), figsize=(cell * len(imgs) + 0.4, cell * H / W + 0.5))
    for t, (ax, img) in enumerate(zip(axes[0], imgs)):
        ax.imshow(img)
        clean_axis(ax)
        ax.set_title(f"t={t + 1}", fontsize=9)
    finish(fig, title)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure (folders created) and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
