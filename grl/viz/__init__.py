"""Figures, all of them (one module per kind, this package the public API): the paper's Figure 4, clips, training curves, the overview of comparisons, ranked lists.

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

from grl.viz.comparisons import VERDICT_COLOURS, plot_ablation_differences, plot_comparisons_overview
from grl.viz.curves import (
    QUANTITY_NAMES,
    curve_keys,
    learning_curves_frame,
    plot_learning_curves,
    plot_training_curves,
    read_metrics,
    read_run_metrics,
)
from grl.viz.figure4 import FIGURE4_ROWS, figure4, heatmap_grid, maps_summary, model_maps
from grl.viz.images import (
    activation_map,
    as_numpy,
    clean_axis,
    denormalize,
    figure_grid,
    finish,
    minmax,
    overlay,
    save,
    scale_maps,
    show_clip,
    to_image,
)
from grl.viz.ranked import ranked_list, ranked_lists

__all__ = [
    "QUANTITY_NAMES",
    "learning_curves_frame",
    "plot_learning_curves",
    "FIGURE4_ROWS",
    "VERDICT_COLOURS",
    "activation_map",
    "as_numpy",
    "clean_axis",
    "curve_keys",
    "denormalize",
    "figure4",
    "figure_grid",
    "finish",
    "heatmap_grid",
    "maps_summary",
    "minmax",
    "model_maps",
    "overlay",
    "plot_ablation_differences",
    "plot_comparisons_overview",
    "plot_training_curves",
    "ranked_list",
    "ranked_lists",
    "read_metrics",
    "read_run_metrics",
    "save",
    "scale_maps",
    "show_clip",
    "to_image",
]
