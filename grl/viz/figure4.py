"""The paper's Figure 4: frames, the correlation maps R_t and the accumulated memories M^1_t, M^2_t of a trained GRL."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from matplotlib.figure import Figure

from grl.viz.images import activation_map, as_numpy, clean_axis, figure_grid, finish, overlay, scale_maps, to_image

# Row labels of Figure 4 (mathtext; the caption of the paper's Figure 4 in order).
FIGURE4_ROWS = ("frames", "$R_t$", "$M^1_t$ forward", "$M^2_t$ backward")


def heatmap_grid(
    frames: Any,
    rows: Mapping[str, Any],
    *,
    scales: Mapping[str, str] | None = None,
    frame_label: str | None = "frames",
    alpha: float = 0.5,
    title: str | None = None,
    cell: float = 1.1,
    colorbar: str | None = None,
) -> Figure:
    """Frames on top (optional) and one row of heat-map overlays per entry of ``rows``.

    ``frames``: (T, 3, H, W) in [0, 1] or (T, H, W, 3) uint8. ``rows``: label -> (T, h, w)
    maps; ``scales``: label -> "raw" | "clip" | "frame" (default "clip"). ``colorbar``: the label of a
    colour bar (0-1, the overlay's colour map) beside the heat-map rows; None draws none.
    """
    imgs = [to_image(f) for f in frames]
    T = len(imgs)
    maps = {}
    for label, m in rows.items():
        m = as_numpy(m).astype(np.float64)
        if m.ndim != 3 or m.shape[0] != T:
            raise ValueError(f"row {label!r}: expected ({T}, h, w) maps, got shape {m.shape}")
        maps[label] = scale_maps(m, (scales or {}).get(label, "clip"))
    labels = ([frame_label] if frame_label else []) + list(maps)
    H, W = imgs[0].shape[:2]
    fig, axes = figure_grid(len(labels), T, figsize=(cell * T + 0.6, cell * H / W * len(labels) + 0.5))
    for r, label in enumerate(labels):
        is_frame_row = bool(frame_label) and r == 0
        for t in range(T):
            ax = axes[r, t]
            ax.imshow(imgs[t] if is_frame_row else overlay(imgs[t], maps[label][t], alpha))
            clean_axis(ax)
            if r == 0:
                ax.set_title(f"t={t + 1}", fontsize=9)
            if t == 0:
                ax.set_ylabel(label, fontsize=9)
    if colorbar is not None and maps:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        heat_axes = axes[1:, :] if frame_label else axes
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), ax=heat_axes, shrink=0.9, pad=0.01)
        bar.set_label(colorbar, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    finish(fig, title)
    return fig


def figure4(
    frames: Any,
    correlation: Any,
    memory_forward: Any,
    memory_backward: Any,
    title: str | None = None,
    *,
    correlation_scale: str = "clip",
    alpha: float = 0.5,
) -> Figure:
    """The paper's Figure 4 for one clip: 4 rows x T columns.

    Row 1 the frames, row 2 the high-correlation maps R_t (eq. 2; min-max over the clip by
    default so time steps stay comparable), rows 3-4 the channel activation maps
    (:func:`activation_map`, per frame) of the accumulated memories M^1_t (forward) and
    M^2_t (backward, index t = frame t). Shapes: frames (T,3,H,W) in [0,1] or (T,H,W,3)
    uint8, correlation (T,h,w), memories (T,C,h,w).
    """
    mf, mb = as_numpy(memory_forward), as_numpy(memory_backward)
    for name, m in (("memory_forward", mf), ("memory_backward", mb)):
        if m.ndim != 4:
            raise ValueError(f"{name} must be (T, C, h, w), got shape {m.shape}")
    rows = {
        FIGURE4_ROWS[1]: correlation,
        FIGURE4_ROWS[2]: np.stack([activation_map(m) for m in mf]),
        FIGURE4_ROWS[3]: np.stack([activation_map(m) for m in mb]),
    }
    scales = {FIGURE4_ROWS[1]: correlation_scale, FIGURE4_ROWS[2]: "raw", FIGURE4_ROWS[3]: "raw"}
    fig = heatmap_grid(
        frames,
        rows,
        scales=scales,
        frame_label=FIGURE4_ROWS[0],
        alpha=alpha,
        title=title,
        colorbar="0 = low, 1 = high (after the scaling below)",
    )
    how = {"clip": "min-max over the clip", "frame": "min-max per frame", "raw": "as computed (sigmoid output)"}
    fig.text(
        0.01,
        -0.02,
        "Rows: the T test frames; $R_t$ = sigmoid(W_r[F~g, X_t]) (eq. 2), "
        f"{how.get(correlation_scale, correlation_scale)}; $M^1_t$ / $M^2_t$: channel activation "
        "(mean over channels of the squared memory, eq. 8), min-max per frame. Overlay: jet colour map, "
        f"alpha {alpha}.",
        fontsize=7,
        ha="left",
        va="top",
        wrap=True,
    )
    return fig


@torch.no_grad()
def model_maps(model: torch.nn.Module, clip: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` (eval mode) on one normalised clip (T,3,H,W) with return_memories=True.

    Returns {"correlation" (T,h,w), "memory_forward" (T,C,h,w), "memory_backward" (T,C,h,w)}
    on the CPU; raises if the model does not produce them (e.g. Baseline, one direction).
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        out = model(clip[None].to(param.device, param.dtype), return_memories=True)
    finally:
        model.train(was_training)
    result = {}
    for name in ("correlation", "memory_forward", "memory_backward"):
        value = getattr(out, name, None)
        if value is None:
            raise ValueError(f"model output has no {name!r}: Figure 4 needs GCE + TRL in both directions")
        result[name] = value[0].float().cpu()
    return result


def maps_summary(
    correlation: Any, memory_forward: Any, memory_backward: Any, decimals: int = 3, digits: int = 4
) -> dict:
    """Small deterministic numbers describing what Figure 4 draws (for regression checks):
    per-frame mean of R_t (``decimals`` places; R_t is in [0, 1]) and per-frame mean squared
    memory activation (``digits`` significant digits: memories are unbounded, so fixed
    decimals would print float noise)."""
    r, mf, mb = as_numpy(correlation), as_numpy(memory_forward), as_numpy(memory_backward)

    def energy(m: np.ndarray) -> list[float]:
        return [float(f"{float(x):.{digits}g}") for x in (m.astype(np.float64) ** 2).mean(axis=(1, 2, 3))]

    return {
        "correlation_shape": list(r.shape),
        "memory_shape": list(mf.shape),
        "R_t_mean": [round(float(x), decimals) for x in r.reshape(len(r), -1).mean(1)],
        "M1_t_energy": energy(mf),
        "M2_t_energy": energy(mb),
    }
