"""Figures, all of them: the paper's Figure 4, clips, training curves, ablation differences, ranked lists.

Every plotting function takes plain tensors / arrays / DataFrames and returns a
matplotlib ``Figure`` (never calls ``plt.show``), so notebooks decide how to display
or save and tests can inspect axes.

Conventions
-----------
* Images: ``(3, H, W)`` float in [0, 1] (torch or numpy) or ``(H, W, 3)`` uint8.
  Clips from the loaders are ImageNet-normalised; pass them through :func:`denormalize`
  first (or ``normalized=True`` where offered).
* Channel activation map of a feature map ``M`` (C, h, w): the mean over channels of the
  *squared* activations, ``A = mean_c M_c^2`` ("attention map" of Zagoruyko & Komodakis,
  ICLR 2017, p = 2), min-max normalised to [0, 1]. Squaring makes the map sign-agnostic
  (memories M_t pass through a residual block and can be negative) and emphasises the
  strongest responses, which is what the paper's rows 3-4 of Figure 4 show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from grl.data.transforms import IMAGENET_MEAN, IMAGENET_STD

# Row labels of Figure 4 (mathtext; the caption of the paper's Figure 4 in order).
FIGURE4_ROWS = ("frames", "$R_t$", "$M^1_t$ forward", "$M^2_t$ backward")

_MATCH_COLOR = "#2ca02c"
_MISMATCH_COLOR = "#d62728"


# ----------------------------------------------------------------------------- arrays
def _np(x: Any) -> np.ndarray:
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
    a = _np(x)
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
    m = _np(memory).astype(np.float64)
    if m.ndim != 3:
        raise ValueError(f"activation_map expects (C, h, w), got shape {m.shape}")
    a = (m**2).mean(axis=0)
    return _minmax(a) if normalize else a


def _minmax(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _scale_maps(maps: np.ndarray, scale: str) -> np.ndarray:
    """(T, h, w) -> [0, 1]. "raw": values already in [0, 1] (e.g. R_t, a sigmoid) are kept;
    "clip": one min-max over all T maps (keeps differences between time steps);
    "frame": min-max per map (where each frame's pattern is shown, as in CAM figures)."""
    if scale == "raw":
        return np.clip(maps, 0.0, 1.0)
    if scale == "clip":
        return _minmax(maps)
    if scale == "frame":
        return np.stack([_minmax(m) for m in maps])
    raise ValueError(f"scale must be 'raw', 'clip' or 'frame', got {scale!r}")


def overlay(frame: Any, heat: Any, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heat map (h, w) in [0, 1] over an image; returns ``(H, W, 3)`` uint8.

    The map is upsampled bilinearly (align_corners=False, like the feature stride) to the
    frame size, coloured with ``cmap`` and blended: ``(1 - alpha) * frame + alpha * colour``.
    """
    img = to_image(frame).astype(np.float64) / 255.0
    h = torch.as_tensor(np.asarray(_np(heat), dtype=np.float32))
    if h.ndim != 2:
        raise ValueError(f"overlay expects a heat map (h, w), got shape {tuple(h.shape)}")
    up = F.interpolate(h[None, None], size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    colour = matplotlib.colormaps[cmap](np.clip(up.numpy(), 0.0, 1.0))[..., :3]
    out = (1.0 - alpha) * img + alpha * colour
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- figures
def _figure(nrows: int, ncols: int, figsize: tuple[float, float], pad: float = 0.02):
    # Constrained layout (unlike tight_layout) makes room for a suptitle and copes with
    # fixed-aspect images; it runs at draw time.
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    fig.get_layout_engine().set(w_pad=pad, h_pad=pad, wspace=0.01, hspace=0.01)
    return fig, axes


def _finish(fig: Figure, title: str | None) -> None:
    if title:
        fig.suptitle(title, fontsize=10)


def _clean(ax) -> None:
    # Keep the axes (not axis("off")) so row labels can live in the y-label.
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


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
        m = _np(m).astype(np.float64)
        if m.ndim != 3 or m.shape[0] != T:
            raise ValueError(f"row {label!r}: expected ({T}, h, w) maps, got shape {m.shape}")
        maps[label] = _scale_maps(m, (scales or {}).get(label, "clip"))
    labels = ([frame_label] if frame_label else []) + list(maps)
    H, W = imgs[0].shape[:2]
    fig, axes = _figure(len(labels), T, figsize=(cell * T + 0.6, cell * H / W * len(labels) + 0.5))
    for r, label in enumerate(labels):
        is_frame_row = bool(frame_label) and r == 0
        for t in range(T):
            ax = axes[r, t]
            ax.imshow(imgs[t] if is_frame_row else overlay(imgs[t], maps[label][t], alpha))
            _clean(ax)
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
    _finish(fig, title)
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
    mf, mb = _np(memory_forward), _np(memory_backward)
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
    r, mf, mb = _np(correlation), _np(memory_forward), _np(memory_backward)

    def energy(m: np.ndarray) -> list[float]:
        return [float(f"{float(x):.{digits}g}") for x in (m.astype(np.float64) ** 2).mean(axis=(1, 2, 3))]

    return {
        "correlation_shape": list(r.shape),
        "memory_shape": list(mf.shape),
        "R_t_mean": [round(float(x), decimals) for x in r.reshape(len(r), -1).mean(1)],
        "M1_t_energy": energy(mf),
        "M2_t_energy": energy(mb),
    }


def show_clip(clip: Any, title: str | None = None, normalized: bool = True, cell: float = 1.1) -> Figure:
    """One row with the T frames of a clip (T,3,H,W); ``normalized``: ImageNet-normalised input."""
    x = denormalize(clip) if normalized else clip
    imgs = [to_image(f) for f in x]
    H, W = imgs[0].shape[:2]
    fig, axes = _figure(1, len(imgs), figsize=(cell * len(imgs) + 0.4, cell * H / W + 0.5))
    for t, (ax, img) in enumerate(zip(axes[0], imgs)):
        ax.imshow(img)
        _clean(ax)
        ax.set_title(f"t={t + 1}", fontsize=9)
    _finish(fig, title)
    return fig


def read_run_metrics(run_dir: str | Path) -> "pandas.DataFrame":  # noqa: F821
    """metrics.jsonl of a run as a frame (one line per logged epoch; nested dicts flattened with '.');
    empty if absent. A line that is not JSON (e.g. half-written when a machine died) is skipped with a
    warning naming the file and line: one bad line never stops a report."""
    import json
    import sys

    import pandas as pd

    from grl import run_folder

    path = run_folder.metrics(run_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return pd.DataFrame()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"warning: {path} cannot be read ({exc}); its training curve is left out", file=sys.stderr)
        return pd.DataFrame()
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            print(f"warning: {path} line {number} is not a JSON record; skipped", file=sys.stderr)
            continue
        records.append(record)
    return pd.json_normalize(records) if records else pd.DataFrame()


def read_metrics(paths: Iterable[str | Path]) -> "pandas.DataFrame":  # noqa: F821
    """metrics.jsonl files (or their run folders) -> one DataFrame with a 'run' column naming the run folder."""
    import pandas as pd

    frames = []
    for p in paths:
        p = Path(p)
        run_dir = p if p.is_dir() else p.parent
        df = read_run_metrics(run_dir)
        df.insert(0, "run", run_dir.name)
        frames.append(df)
    if not frames:
        raise ValueError("read_metrics: no metrics files given")
    return pd.concat(frames, ignore_index=True)


def curve_keys(df, exclude: set) -> list[str]:
    """The columns worth a training-curve panel: each loss term, the learning rate and the headline
    retrieval numbers -- but no column that is constant, has fewer than two points, or repeats another
    (the Baseline's total loss *is* its one term), and no timings ("*_s") or counters."""
    import pandas as pd

    numeric = [
        c
        for c in df.columns
        if c not in exclude
        and c not in {"epoch", "step", "steps"}
        and not c.endswith("_s")
        and pd.api.types.is_numeric_dtype(df[c])
    ]
    informative = [c for c in numeric if df[c].notna().sum() >= 2 and df[c].dropna().nunique() > 1]
    headline = [
        c for c in informative if c.startswith("loss") or c.startswith("lr") or c.split(".")[-1] in ("mAP", "rank1")
    ] or informative
    keys: list[str] = []
    for c in headline:  # a column repeating another is left out (the named term is kept, not the total)
        if c != "loss" and not any(df[c].equals(df[k]) for k in keys):
            keys.append(c)
    terms = [k for k in keys if k.startswith("loss_")]
    total_is_a_term = len(terms) == 1 and "loss" in df and np.allclose(df["loss"].dropna(), df[terms[0]].dropna())
    if "loss" in headline and not total_is_a_term and not any(df["loss"].equals(df[k]) for k in keys):
        keys.insert(0, "loss")
    return keys


def _axis_label(key: str) -> str:
    if key.startswith("loss"):
        return "loss"
    if key.startswith("lr"):
        return "learning rate"
    if key.split(".")[-1] in ("mAP", "rank1"):
        return "%"
    return key


def plot_training_curves(
    metrics: Any,
    keys: Sequence[str] | None = None,
    x: str | None = None,
    title: str | None = None,
    run_col: str = "run",
) -> Figure:
    """One panel per curve (:func:`curve_keys`: each loss term, lr, mAP / Rank-1 of the periodic
    evaluations) against ``x`` (default "epoch", else "step", else the row number); one line per run.
    ``metrics``: a DataFrame, or metrics.jsonl paths / run folders."""
    import pandas as pd

    if isinstance(metrics, (str, Path)):
        metrics = [metrics]
    df = metrics if isinstance(metrics, pd.DataFrame) else read_metrics(metrics)
    df = df.copy()
    if x is None:
        x = next((c for c in ("epoch", "step") if c in df.columns), None)
    if x is None:
        x = "row"
        df[x] = np.arange(len(df))
    if keys is None:
        keys = curve_keys(df, exclude={x, run_col})
    if not keys:
        raise ValueError(f"plot_training_curves: no curve with two or more distinct points in {list(df.columns)}")
    n = len(keys)
    cols = min(n, 4)
    nrows = (n + cols - 1) // cols
    fig, axes = _figure(nrows, cols, figsize=(3.3 * cols, 2.6 * nrows), pad=0.08)
    groups = df.groupby(run_col, sort=False) if run_col in df.columns else [("", df)]
    for ax, key in zip(axes.flat, keys):
        for name, g in groups:
            g = g[[x, key]].dropna()
            ax.plot(g[x], g[key], marker="o" if len(g) < 20 else None, ms=3, label=str(name) or None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel(_axis_label(key), fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if run_col in df.columns and df[run_col].nunique() > 1:
        axes.flat[0].legend(
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.25 if nrows == 1 else -0.35),
            ncol=min(4, df[run_col].nunique()),
            frameon=False,
        )
    _finish(fig, title)
    return fig


VERDICT_COLOURS = {"agrees": "#2ca02c", "contradicts": "#d62728", "inconclusive": "#7f7f7f"}


def plot_ablation_differences(
    comparisons: "pandas.DataFrame",  # noqa: F821
    metric: str = "mAP",
    title: str | None = None,
) -> Figure:
    """What can be compared with the paper: for every comparison (rows of ``grl.results.comparisons``),
    our paired difference to the reference row with its 95 % interval (a dot and a bar, coloured by the
    verdict) beside the paper's difference (a black cross), on one shared axis with 0 marked -- so
    agreement in sign is visible at a glance. One line per comparison; the legend sits outside the axes."""
    from matplotlib.lines import Line2D

    need = {"table", "row", "vs", "dataset", "metric", "paper_delta", "ours_delta", "low", "high", "verdict"}
    missing = sorted(need - set(comparisons.columns))
    if missing:
        raise ValueError(f"plot_ablation_differences: missing column(s) {missing}; pass grl.results.comparisons(...)")
    data = comparisons[comparisons.metric == metric].reset_index(drop=True)
    if data.empty:
        raise ValueError(f"plot_ablation_differences: no comparison of metric {metric!r}")
    names = {"mars": "MARS", "ilidsvid": "iLIDS-VID", "prid2011": "PRID2011"}
    labels = [f"T{r.table} {names.get(r.dataset, r.dataset)}: {r.row}  vs  {r.vs}" for r in data.itertuples()]
    y = np.arange(len(data))[::-1]
    fig = plt.figure(figsize=(11, 0.32 * len(data) + 1.4))
    ax = fig.add_axes((0.42, 0.9 / (0.32 * len(data) + 1.4), 0.40, 1 - 1.2 / (0.32 * len(data) + 1.4)))
    colours = [VERDICT_COLOURS.get(v, "#7f7f7f") for v in data.verdict]
    low = (data.ours_delta - data.low).clip(lower=0).fillna(0)
    high = (data.high - data.ours_delta).clip(lower=0).fillna(0)
    for yi, mean, lo, hi, colour in zip(y, data.ours_delta, low, high, colours):
        ax.errorbar(mean, yi, xerr=[[lo], [hi]], fmt="o", color=colour, ms=4, capsize=2, lw=1.2)
    ax.scatter(data.paper_delta, y, marker="x", color="black", s=22, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(-0.7, len(data) - 0.3)
    ax.set_xlabel(f"difference to the reference row, {metric} (percentage points)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], color=c, marker="o", ls="-", label=f"ours, {v} (95 % interval)")
        for v, c in VERDICT_COLOURS.items()
    ]
    handles.append(Line2D([], [], color="black", marker="x", ls="", label="paper"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def ranked_list(
    query_frames: Any,
    gallery_frames: Sequence[Any],
    gallery_is_match: Sequence[bool],
    k: int = 10,
    distances: Sequence[float] | None = None,
    title: str | None = None,
    cell: float = 1.0,
) -> Figure:
    """Query thumbnail and its top-``k`` gallery thumbnails (in rank order) with green (same
    identity) / red borders. Thumbnails are the first frame of each clip (images in [0, 1]
    or uint8; denormalise first)."""
    k = min(k, len(gallery_frames))
    if len(gallery_is_match) < k:
        raise ValueError(f"ranked_list: {len(gallery_is_match)} match flags for {k} gallery items")
    q = to_image(query_frames)
    H, W = q.shape[:2]
    fig, axes = _figure(1, k + 1, figsize=(cell * (k + 1) + 0.4, cell * H / W + 0.6))
    axes = axes[0]
    axes[0].imshow(q)
    _clean(axes[0])
    axes[0].set_title("query", fontsize=9)
    for i in range(k):
        ax = axes[i + 1]
        ax.imshow(to_image(gallery_frames[i]))
        ax.set_xticks([])
        ax.set_yticks([])
        colour = _MATCH_COLOR if gallery_is_match[i] else _MISMATCH_COLOR
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(3)
        text = f"#{i + 1}" + (f"\n{distances[i]:.2f}" if distances is not None else "")
        ax.set_title(text, fontsize=8, color=colour)
    _finish(fig, title)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure (folders created) and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


_IGNORED_COLOR = "#999999"


def ranked_lists(lists: Sequence[Mapping], frames: int = 3, cell: float = 0.45) -> Figure:
    """Ranked lists, one row per (model, query) of :func:`grl.engine.inference.ranked_lists`: the query's frames,
    then each gallery tracklet's ``frames`` frames, framed green (right identity, another camera: a match), red
    (another identity) or grey and marked "same cam" / "junk" (what the protocol ignores), with the rank and the
    distance above. Rows of the same query under different models sit one below the other, so they compare."""
    from grl.engine.inference import IGNORED, MATCH, clip_thumbnails

    rows = sorted(lists, key=lambda r: (r["query_index"], [x["label"] for x in lists].index(r["label"])))
    columns = 1 + max(len(r["items"]) for r in rows)
    strip = lambda t: np.concatenate(clip_thumbnails(t, frames), axis=1)  # noqa: E731  (H, frames*W, 3)
    fig, axes = _figure(len(rows), columns, figsize=(cell * frames * columns + 1.2, 1.35 * len(rows) + 0.3))
    for r, row in enumerate(rows):
        ax = axes[r][0]
        ax.imshow(strip(row["query"]))
        _clean(ax)
        ax.set_title(f"query {row['query_index']} (id {row['query'].pid}, cam {row['query'].camid + 1})", fontsize=7)
        ax.set_ylabel(row["label"], fontsize=8, rotation=0, ha="right", va="center")
        ax.yaxis.set_visible(True)
        ax.set_yticks([])
        for c in range(1, columns):
            ax = axes[r][c]
            if c - 1 >= len(row["items"]):
                ax.axis("off")
                continue
            item = row["items"][c - 1]
            tracklet = item["tracklet"]
            ax.imshow(strip(tracklet))
            ax.set_xticks([])
            ax.set_yticks([])
            colour = {MATCH: _MATCH_COLOR, IGNORED: _IGNORED_COLOR}.get(item["kind"], _MISMATCH_COLOR)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(3)
            if item["kind"] == IGNORED:
                head = "junk" if tracklet.pid == -1 else "same cam"
            else:
                head = f"#{item['rank']}"
            ax.set_title(f"{head}  {max(item['distance'], 0.0):.2f}", fontsize=7, color=colour)  # no -0.00
    _finish(fig, "Ranked lists: green = right identity, red = wrong, grey = ignored by the protocol")
    return fig
