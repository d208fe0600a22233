"""Adaptive seeds: a study's runs when its profile lets the seeds follow the precision targets (docs/study.md,
"Adaptive seeds").

The profile's own seeds are trained first. Then, round after round, every headline comparison whose 95 %
interval is still wider than its target (:func:`grl.results.precision.over_target`, which reads widths only)
gets one more paired sample: the smallest seed its two arms do not share yet is trained for the arm that lacks
it, on all the dataset's splits. The rounds stop when no comparison is over target or the next seed would reach
the profile's ``max_seeds``.

The plan is a function of the finished runs only, so the batch and the report compute the same list of runs, and
an interrupted batch resumes where it stopped: :func:`study_runs` plans up to the first round with a run that is
not finished yet.
"""

from __future__ import annotations

from grl.catalogue import CATALOGUE
from grl.experiments import Run, get_profile, runs_for


def is_adaptive(profile: str, seeds: tuple[int, ...] | None) -> bool:
    """Seeds given explicitly (``--seeds``) are a fixed design; so is a profile without ``max_seeds``."""
    return seeds is None and get_profile(profile).max_seeds > 0


def study_runs(profile: str, only=None, dataset=None, *, seeds=None, **selection) -> list[Run]:
    """The runs of a study: :func:`grl.experiments.runs_for` for a fixed design, else the adaptive plan as far
    as the finished runs decide it. ``selection``: runs_for's data_roots, root, recipe and overrides."""
    runs = runs_for(profile, only, dataset, seeds=seeds, **selection)
    if not is_adaptive(profile, seeds):
        return runs
    cap = get_profile(profile).max_seeds
    while all(r.is_done() for r in runs):
        extra = next_round(profile, runs, cap, only, dataset, **selection)
        if not extra:
            break
        runs = runs + extra
    return runs


def next_round(profile: str, runs: list[Run], cap: int, only=None, dataset=None, **selection) -> list[Run]:
    """The runs of the next round: for each comparison over target, its arms' next shared seed (below ``cap``)."""
    from grl.results import comparisons, results_frame
    from grl.results.precision import over_target

    seeds_of: dict[tuple[str, str], set[int]] = {}
    for r in runs:
        seeds_of.setdefault((r.experiment, r.dataset), set()).add(r.config.seed)
    wanted: dict[int, set[tuple[str, str]]] = {}  # seed -> the arms that train it this round
    for row in over_target(comparisons(results_frame(runs))).itertuples():
        a, b = _arm(row.table, row.row, row.dataset), _arm(row.table, row.vs, row.dataset)
        shared = seeds_of.get(a, set()) & seeds_of.get(b, set())
        seed = min(set(range(cap + 1)) - shared)
        if seed >= cap:
            continue  # this comparison has every seed the profile allows
        for arm in (a, b):
            if seed not in seeds_of.get(arm, set()):
                wanted.setdefault(seed, set()).add(arm)
    extra = []
    for seed, arms in sorted(wanted.items()):
        extra += [
            r for r in runs_for(profile, only, dataset, seeds=(seed,), **selection) if (r.experiment, r.dataset) in arms
        ]
    return extra


def _arm(table: int, row: str, dataset: str) -> tuple[str, str]:
    experiment = next(r.experiment for r in CATALOGUE if (r.table, r.row, r.dataset) == (table, row, dataset))
    return experiment, dataset
