"""The report's figures as PNG files (drawn by grl.viz; grl.results.document captions them)."""

from __future__ import annotations

from pathlib import Path

from grl import run_folder
from grl.experiments import Run
from grl.results.comparisons import comparisons
from grl.results.frame import results_frame

OVERVIEW = "comparisons_overview.png"


def save_figures(out: str | Path, runs: list[Run]) -> list[Path]:
    """The report's plots as PNG files in ``out`` (grl.results.document captions them): the overview of every
    comparison, the learning curves and the ranked lists. Figure 4 is written by figure4.ipynb."""
    import matplotlib.pyplot as plt

    from grl import viz

    out = Path(out)
    ours = results_frame(runs)
    agreement = comparisons(ours)
    written = []
    if len(agreement):
        fig = viz.plot_comparisons_overview(agreement)
        written.append(viz.save(fig, out / OVERVIEW))
        plt.close(fig)
    fig = learning_curves_figure(runs)
    if fig is not None:
        written.append(viz.save(fig, out / "training_curves.png"))
        plt.close(fig)
    fig = ranked_lists_figure(runs)
    if fig is not None:
        written.append(viz.save(fig, out / "ranked_lists.png"))
    return written


def ranked_lists_figure(runs: list[Run], dataset: str = "mars", queries: int = 4, k: int = 5, seed: int = 0):
    """GRL beside the Baseline on the same ``queries`` random queries of ``dataset`` (the first seed's runs, split
    0): each model's top-``k`` gallery tracklets (:func:`grl.viz.ranked_lists` of
    :func:`grl.engine.inference.study_ranked_lists`). None when either run is not done."""
    from grl import viz
    from grl.engine.inference import study_ranked_lists

    lists = study_ranked_lists(runs, dataset, queries, k, seed)
    return None if lists is None else viz.ranked_lists(lists)


ARM_NAMES = {"baseline": "Baseline", "gce": "+GCE", "grl": "GRL"}


def learning_curves_figure(runs: list[Run], dataset: str = "mars"):
    """Baseline, +GCE and GRL on ``dataset`` (split 0, every seed): :func:`grl.viz.plot_learning_curves`. None
    when no such run has logged an epoch, or no quantity has two evaluated steps."""
    from grl import viz

    shown = [
        (ARM_NAMES[r.experiment], r.seed, r.run_dir, r.config.main_feature)
        for r in runs
        if r.dataset == dataset
        and r.split == 0
        and r.experiment in ARM_NAMES
        and run_folder.metrics(r.run_dir).is_file()
    ]
    long = viz.learning_curves_frame(shown)
    if long.empty:
        return None
    seeds = sorted(long["seed"].unique())
    name = {"mars": "MARS", "ilidsvid": "iLIDS-VID", "prid2011": "PRID2011"}.get(dataset, dataset)
    title = f"Training on {name}: mean and ±1 SD band over {len(seeds)} seed(s) ({', '.join(map(str, seeds))})"
    try:
        return viz.plot_learning_curves(long, title=title)
    except ValueError:  # nothing with two evaluated steps to draw
        return None
