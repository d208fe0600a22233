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
    from grl.results.frame import calibration_check

    runs = [r for r in runs_for(profile, "baseline", dataset, seeds=seeds, root=root) if r.experiment == "baseline"]
    jobs = check_jobs(default_jobs(profile) if jobs is None else jobs)
    with batch_lock(profile_dir(profile, root)):
        prepare_shared(runs, jobs)
        check_data(runs)
        outcome = run_batch(runs, status_path=None, jobs=jobs)
    ours = results_frame([r for r in runs if r.is_done()])
    lines = [f"\nBaseline (F^g), profile {profile!r}, data {runs[0].config.data_version}: mean ± 95 % interval"]
    checks = {(c["dataset"], c["metric"]): c for c in calibration_check(ours, dataset)}
    met = not outcome.failed
    for (name, metric), (low, high) in CALIBRATION_TARGETS.items():
        if dataset and name != dataset:
            continue
        c = checks.get((name, metric))  # None: no finished Baseline run of that set
        met &= c is not None and c["in_range"]
        lines.append(
            f"  {name:<9} {metric:<6} {c['interval'].text(1) if c else '—':>14}  target {low}-{high}  "
            f"{'in range' if c and c['in_range'] else 'OUT OF RANGE'}  "
            f"(per seed: {', '.join(f'{v:.1f}' for v in (c['values'] if c else []))})"
        )
    return met, "\n".join(lines)
