"""Ranked lists: each query beside its top-k gallery tracklets, matches in green, mismatches in red."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from grl.viz.images import clean_axis, figure_grid, finish, to_image

_MATCH_COLOR = "#2ca02c"
_MISMATCH_COLOR = "#d62728"


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
    fig, axes = figure_grid(1, k + 1, figsize=(cell * (k + 1) + 0.4, cell * H / W + 0.6))
    axes = axes[0]
    axes[0].imshow(q)
    clean_axis(axes[0])
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
    finish(fig, title)
    return fig


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
    fig, axes = figure_grid(len(rows), columns, figsize=(cell * frames * columns + 1.2, 1.35 * len(rows) + 0.3))
    for r, row in enumerate(rows):
        ax = axes[r][0]
        ax.imshow(strip(row["query"]))
        clean_axis(ax)
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
    finish(fig, "Ranked lists: green = right identity, red = wrong, grey = ignored by the protocol")
    return fig
