"""The report's figures as PNG files and their captions (drawn by grl.viz)."""

from __future__ import annotations

from pathlib import Path

from grl import run_folder
from grl.experiments import Run
from grl.results.comparisons import comparisons
from grl.results.frame import results_frame

FIGURES = {  # file in the profile's folder -> caption in report.md
    "figure4_query*.png": "Figure 4 (GRL on MARS, first seed): frames, R_t, forward and backward memories",
    "ablation_differences_mAP.png": "Every comparison of Tables 2-6, mAP: our paired difference with its 95 % interval "
    "(coloured by the verdict), the per-seed and per-split differences it rests on (grey; n on each line) and the "
    "paper's difference (x)",
    "ablation_differences_rank1.png": "The same for Rank-1",
    "training_curves.png": "Training on MARS, Baseline, +GCE and GRL: one panel per loss term (and the test set's "
    "numbers where evaluated more than once), the mean over the seeds with a band of ±1 SD (the seeds: the figure's title)",
    "ranked_lists.png": "Ranked lists, GRL beside the Baseline on the same MARS queries (green right, red wrong, grey ignored)",
}


def save_figures(out: str | Path, runs: list[Run]) -> list[Path]:
    """The report's plots as PNG files in ``out`` (report.md shows them): the ablation differences, the
    training curves and the ranked lists. Figure 4 is written by figure4.ipynb."""
    import matplotlib.pyplot as plt

    from grl import viz

    out = Path(out)
    ours = results_frame(runs)
    agreement = comparisons(ours)
    written = []
    for metric in ("mAP", "rank1"):
        if len(agreement) and (agreement.metric == metric).any():
            fig = viz.plot_ablation_differences(agreement, metric)
            written.append(viz.save(fig, out / f"ablation_differences_{metric}.png"))
            plt.close(fig)
    fig = learning_curves_figure(runs)
    if fig is not None:
        written.append(viz.save(fig, out / "training_curves.png"))
        plt.close(fig)
    fig = ranked_lists_figure(runs)
    if fig is not None:
        written.append(viz.save(fig, out / "ranked_lists.png"))
    return written


def figures_markdown(out: str | Path) -> str:
    """Links to the report's PNG figures that exist in ``out``, with their captions."""
    lines = []
    for pattern, caption in FIGURES.items():
        for path in sorted(Path(out).glob(pattern)):
            lines.append(f"![{caption}]({path.name})\n\n*{caption}* (`{path.name}`)")
    return "\n\n".join(lines) if lines else "(no figure generated yet: `python -m grl reproduce` makes them)"


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
