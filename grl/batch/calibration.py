"""Calibrating the built-in benchmark on the Baseline alone (docs/study.md, "Calibrating the built-in benchmark"):
train the Baseline runs of a profile (never GRL's) and read them against the targets."""

from __future__ import annotations

from grl.data.synthetic.sizes import CALIBRATION_TARGETS


def calibrate(profile: str, seeds=None, dataset: str | None = None, root=None, jobs: int | None = None):
    """(every target met, the text that says so): trains (or reuses) the profile's Baseline runs, then compares
    each dataset's mean with its target range. ``root``: where the runs go (default reports/PROFILE, where the
    study reuses them)."""
    from grl.batch.local import check_jobs, default_jobs, run_batch
    from grl.batch.locks import batch_lock
    from grl.batch.shared import check_data, prepare_shared
    from grl.experiments import profile_dir, runs_for
    from grl.results import results_frame
    from grl.stats import t_interval

    runs = [r for r in runs_for(profile, "baseline", dataset, seeds=seeds, root=root) if r.experiment == "baseline"]
    jobs = check_jobs(default_jobs(profile) if jobs is None else jobs)
    with batch_lock(profile_dir(profile, root)):
        prepare_shared(runs, jobs)
        check_data(runs)
        outcome = run_batch(runs, status_path=None, jobs=jobs)
    ours = results_frame([r for r in runs if r.is_done()])
    lines = [f"\nBaseline (F^g), profile {profile!r}, data {runs[0].config.data_version}: mean ± 95 % interval"]
    met = not outcome.failed
    for (name, metric), (low, high) in CALIBRATION_TARGETS.items():
        if dataset and name != dataset:
            continue
        values = ours[(ours.dataset == name) & (ours.feature == "g") & (ours.metric == metric)].value
        iv = t_interval(values.tolist()) if len(values) else None
        ok = iv is not None and low <= iv.mean <= high
        met &= ok
        lines.append(
            f"  {name:<9} {metric:<6} {iv.text(1) if iv else '—':>14}  target {low}-{high}  "
            f"{'in range' if ok else 'OUT OF RANGE'}  (per seed: {', '.join(f'{v:.1f}' for v in values)})"
        )
    return met, "\n".join(lines)
