"""``python -m grl reproduce``: plan the runs of the catalogue, make what they share, run them (locally or on SLURM
through :mod:`grl.batch.cluster`), then Figure 4 and the report.

papermill has no notion of "done", so the batch owns it: a run is done when its ``result.json`` holds the run's
config key *and* its executed notebook is there and readable; rerunning a batch skips finished runs and resumes
the interrupted one from its checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grl.batch.adaptive import is_adaptive, study_runs
from grl.batch.core import BatchError, BatchInterrupted, BatchResult, experiment_parameters, notebooks_dir
from grl.batch.local import check_jobs, run_batch, stop_kernels
from grl.batch.locks import batch_lock, os_error_message, preflight, stop_if_out_of_space
from grl.batch.notebook import Kernel, execute, validate_parameters
from grl.batch.shared import check_data, prepare_shared
from grl.config import DATASETS, ConfigError
from grl.experiments import get_profile, profile_dir, study_dir
from grl.utils import fault_point


# ---------------------------------------------------------------------------------------
# the whole study
def reproduce(
    profile: str,
    only: str | None = None,
    dataset: str | None = None,
    data_roots: dict[str, str] | None = None,
    seeds: tuple[int, ...] | None = None,
    root: str | Path | None = None,
    reference: str | Path | None = None,
    recipe: str | None = None,
    jobs: int = 1,
    executor: str = "local",
    slurm=None,
    procs_per_run: int = 1,
    overrides: dict | None = None,
) -> int:
    """Run the selected catalogue for every seed (``jobs`` runs at once), then Figure 4 and the report; return a
    process exit code.

    ``executor="slurm"`` submits each unfinished run as a SLURM job instead (:mod:`grl.batch.cluster`, with the
    :class:`grl.batch.cluster.SlurmOptions` ``slurm``); the report is built here the same way when they end.

    The report (report.html, report.md, results.csv) describes exactly this selection and never
    trains anything itself; report.html and report.md are written together, or neither is.

    ``overrides`` (``--set`` / ``--config``) change every run (:func:`grl.experiments.make_run`); without ``root``
    their study goes to reports/<profile>-<field>=<value>,.../, so it never replaces the profile's own report.
    """
    from grl.batch import cluster

    slurm = cluster.check_executor(
        executor, slurm, procs_per_run
    )  # before anything else: a missing sbatch is said at once
    overrides = dict(overrides or {})
    root = study_dir(profile, root, overrides)
    out = profile_dir(profile, root)
    adaptive = is_adaptive(profile, seeds)
    seeds = get_profile(profile).seeds if seeds is None else tuple(seeds)
    selection = dict(data_roots=data_roots, root=root, recipe=recipe, overrides=overrides)
    runs = study_runs(profile, only, dataset, seeds=None if adaptive else seeds, **selection)
    nb_dir = notebooks_dir()
    for run in runs:  # every parameter checked before anything heavy starts
        validate_parameters(nb_dir / "experiment.ipynb", experiment_parameters(run))
    report_parameters = {
        "profile": profile,
        "reports_dir": str(out),
        "seeds": "" if adaptive else ",".join(map(str, seeds)),  # empty: the report plans the adaptive seeds too
        "reference": str(Path(reference).resolve()) if reference else "",  # the notebook runs elsewhere
        "recipe": recipe or "",
        "train_missing": False,
        "only": only or "",
        "dataset": dataset or "",
        "data_roots": ",".join(f"{k}={v}" for k, v in sorted((data_roots or {}).items())),
        "overrides": overrides,
    }
    validate_parameters(nb_dir / "report.ipynb", report_parameters)
    jobs = check_jobs(jobs)
    with batch_lock(out):
        preflight(out, runs)
        print(
            f"profile {profile!r}, seeds {','.join(map(str, seeds))}"
            + (f", adaptive up to {get_profile(profile).max_seeds}" if adaptive else "")
            + f": {len(runs)} runs ({sum(r.is_done() for r in runs)} already done) -> {out}"
        )
        batch = BatchResult()
        while True:  # one round for a fixed design; adaptive seeds plan again until nothing is missing
            round_ = _train(runs, out, nb_dir, jobs, slurm, procs_per_run)
            batch.done += round_.done
            batch.skipped += [name for name in round_.skipped if name not in batch.done]  # trained in a round before
            batch.failed.update(round_.failed)
            if not adaptive or batch.failed:
                break
            more = study_runs(profile, only, dataset, **selection)
            if len(more) == len(runs):
                break
            print(f"adaptive seeds: {len(more) - len(runs)} more runs for the comparisons still over their target")
            runs = more
        failures = dict(batch.failed)
        try:
            _figure4_and_report(profile, out, nb_dir, runs, seeds, reference, report_parameters, failures)
        except KeyboardInterrupt:
            raise BatchInterrupted(step="the report (the runs are all kept)") from None
        except OSError as exc:
            raise BatchError(os_error_message(exc, out)) from None
    print(f"runs: {len(batch.done)} trained, {len(batch.skipped)} already done, {len(batch.failed)} failed")
    for name, path in failures.items():
        print(f"  FAILED {name}: {path}")
    return 1 if failures else 0


def _train(runs, out, nb_dir, jobs, slurm, procs_per_run):
    """Train the unfinished ``runs`` (what they share first), locally or on SLURM."""
    from grl.batch import cluster

    try:
        missing = [r for r in runs if not r.is_done()]
        if missing:
            prepare_shared(missing, jobs)  # data, pretrained backbone, frame caches: in parallel, timed
        check_data(runs)
    except KeyboardInterrupt:
        raise BatchInterrupted(step="data generation") from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise BatchError(os_error_message(exc, out)) from None
    if slurm is not None:
        return cluster.run_jobs(
            runs,
            nb_dir / "experiment.ipynb",
            status_path=out / "status.json",
            options=slurm,
            folder=out / cluster.LOGS,
            procs_per_run=procs_per_run,
        )
    return run_batch(
        runs, nb_dir / "experiment.ipynb", status_path=out / "status.json", jobs=jobs, procs_per_run=procs_per_run
    )


def _figure4_and_report(profile, out, nb_dir, runs, seeds, reference, report_parameters, failures) -> None:
    kernel = Kernel(nb_dir)  # one kernel for both notebooks: the second one skips the start and the imports
    try:
        _figure4_and_report_in(kernel, profile, out, nb_dir, runs, seeds, reference, report_parameters, failures)
    except BaseException:
        stop_kernels()
        raise
    finally:
        kernel.shutdown()


def _figure4_and_report_in(kernel, profile, out, nb_dir, runs, seeds, reference, report_parameters, failures) -> None:
    from grl.results import results_frame, write_report, write_results_csv

    write_results_csv(out / "results.csv", results_frame(runs))
    print(f"per-seed results: {out / 'results.csv'}")
    figure4 = nb_dir / "figure4.ipynb"
    grl_run = next(
        (r for r in runs if r.experiment == "grl" and r.dataset == "mars" and r.seed == seeds[0]),
        next((r for r in runs if r.experiment == "grl"), None),
    )
    if not figure4.exists():
        print(f"skipping Figure 4: {figure4} does not exist")
    elif grl_run is None or not grl_run.is_done():
        print("skipping Figure 4: no finished GRL run in this selection")
    else:
        _step(
            "Figure 4",
            figure4,
            out / "figure4.ipynb",
            {"profile": profile, "run_dir": str(grl_run.run_dir), "output_dir": str(out)},
            failures,
            kernel,
        )

    fault_point("before-report")
    from grl.results import save_figures

    save_figures(out, runs)
    # The executed report notebook (reports/PROFILE/report.ipynb) is the interactive report; report.html, .md and
    # .pdf are written from the same package functions, in the reader's order, only once it ran without error.
    if _step("report", nb_dir / "report.ipynb", out / "report.ipynb", report_parameters, failures, kernel):
        from grl.results import failed_runs

        failed = failed_runs(runs, out / "status.json")
        written = write_report(out, profile, runs, reference, failed=failed)
        print(f"report: {out / 'report.html'} and {out / 'report.md'}")
        print(f"report: {written['pdf']}" if "pdf" in written else written["pdf_missing"])
    else:
        kept = [p.name for p in (out / "report.html", out / "report.md") if p.exists()]
        print(
            "report NOT rebuilt" + (f": {' and '.join(kept)} are the previous batch's, unchanged" if kept else ""),
            file=sys.stderr,
        )


def _step(what: str, notebook: Path, output: Path, parameters: dict, failures: dict, kernel=None) -> bool:
    import papermill

    print(f"executing {notebook.name} -> {output}")
    try:
        execute(notebook, output, parameters, cwd=notebook.parent, kernel=kernel)
        return True
    except papermill.PapermillExecutionError as exc:
        stop_if_out_of_space(exc, output.parent)
        failures[what] = str(output)
        print(f"FAILED {what}: {str(exc).strip().splitlines()[-1]}; see {output}", file=sys.stderr)
        return False


def parse_data_roots(items: list[str] | None) -> dict[str, str]:
    """``["mars=/data/MARS", ...]`` -> {"mars": "/data/MARS"}; names checked against the datasets."""
    roots = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"--data-root expects NAME=PATH (NAME one of {', '.join(DATASETS)}), got {item!r}")
        if name not in DATASETS:
            raise ConfigError(f"--data-root: unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
        roots[name] = str(Path(path).expanduser().resolve())
    return roots
