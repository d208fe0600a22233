"""The batch on a SLURM cluster: ``python -m grl reproduce --executor slurm``.

Each unfinished run of the selection becomes one SLURM job, submitted through submitit. The job executes the run's
notebook exactly as the local batch does (:func:`grl.batch.notebook.execute` into ``runs/<name>/experiment.ipynb``),
so the executed notebook, the result and the checkpoints land in the run folder (a filesystem the nodes share
with this machine), and the report is then built here as after a local batch.

Same semantics as :func:`grl.batch.local.run_batch`: a finished run (its result and a readable executed notebook) is skipped, so a rerun submits only the missing runs; a run that fails is
recorded as failed (executed notebook, the error's last line) and the other jobs go on. A job
preempted or out of time is requeued by submitit (:class:`RunJob` is checkpointable: SLURM's
``--signal`` makes submitit resubmit the same call), and a job that ended without a result (cancelled,
killed, out of memory) is resubmitted by the next batch; either way the run resumes from its checkpoint.
submitit's scripts and logs go to ``reports/<profile>/slurm/``.

Tested with submitit's local executor only (``SlurmOptions(cluster="local")``, or an executor passed to
:func:`run_jobs`): there is no SLURM cluster where this was written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from grl import run_folder
from grl.config import ConfigError
from grl.experiments import Run, load_result

EXECUTORS = ("local", "slurm")
LOGS = "slurm"  # submitit's folder inside the profile folder: reports/<profile>/slurm/
DEFAULT_TIME_MIN = 720
# sbatch options submitit sets itself (logs, requeue signal) or that have their own --slurm-* option.
RESERVED = {
    "partition": "--slurm-partition",
    "time": "--slurm-time",
    "gpus-per-node": "--slurm-gpus-per-run",
    "output": None,
    "error": None,
    "signal": None,
    "open-mode": None,
    "array": None,
    "job-name": None,
}


@dataclass(frozen=True)
class SlurmOptions:
    """What each run's job asks SLURM for: partition (None: the cluster's default), time limit in
    minutes, GPUs, and extra sbatch options (``{"account": "abc", "mem": "64G"}`` -> ``#SBATCH --account=abc``).

    ``cluster`` is for the tests only: ``"local"`` runs the jobs through submitit's LocalExecutor on
    this machine (no sbatch needed); ``"slurm"`` (the default) is the real thing.
    """

    partition: str | None = None
    time_min: int = DEFAULT_TIME_MIN
    gpus_per_run: int = 1
    options: dict[str, str] = field(default_factory=dict)
    cluster: str = "slurm"

    def __post_init__(self) -> None:
        for name, value in (("--slurm-time", self.time_min), ("--slurm-gpus-per-run", self.gpus_per_run)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{name} must be a whole number >= 1 "
                    f"({'minutes per job' if name == '--slurm-time' else 'GPUs per job'}), got {value!r}"
                )
        for key in self.options:
            _check_key(key)


def parse_slurm_options(items: list[str] | None) -> dict[str, str]:
    """``["account=abc", "mem=64G"]`` -> ``{"account": "abc", "mem": "64G"}`` (extra sbatch options)."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not value:
            raise ConfigError(
                f"--slurm-option expects KEY=VALUE, an sbatch option without its dashes "
                f"(e.g. --slurm-option account=myproject --slurm-option mem=64G), got {item!r}"
            )
        _check_key(key)
        options[key] = value
    return options


def _check_key(key: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
        raise ConfigError(f"--slurm-option {key!r}: not an sbatch option name (letters, digits, - and _)")
    name = key.replace("_", "-")
    if name in RESERVED:
        own = RESERVED[name]
        raise ConfigError(
            f"--slurm-option {key}=...: "
            + (
                f"use {own} instead"
                if own
                else "submitit sets this sbatch option itself (logs and requeueing need it); drop it"
            )
        )


def slurm_options(
    executor: str,
    partition: str | None = None,
    time_min: int | None = None,
    gpus_per_run: int | None = None,
    option_items: list[str] | None = None,
) -> SlurmOptions | None:
    """The command line's ``--executor`` and ``--slurm-*`` options, checked: None for the local executor."""
    check_executor_name(executor)
    given = [
        name
        for name, value in (
            ("--slurm-partition", partition),
            ("--slurm-time", time_min),
            ("--slurm-gpus-per-run", gpus_per_run),
            ("--slurm-option", option_items),
        )
        if value not in (None, [], ())
    ]
    if executor == "local":
        if given:
            several = len(given) > 1
            raise ConfigError(
                f"{', '.join(given)} appl{'y' if several else 'ies'} only to SLURM jobs: add --executor "
                f"slurm, or drop {'them' if several else 'it'} to run on this machine"
            )
        return None
    return SlurmOptions(
        partition=partition,
        time_min=DEFAULT_TIME_MIN if time_min is None else time_min,
        gpus_per_run=1 if gpus_per_run is None else gpus_per_run,
        options=parse_slurm_options(option_items),
    )


def check_executor_name(executor: str) -> None:
    if executor not in EXECUTORS:
        raise ConfigError(
            f"--executor {executor!r}: unknown executor; valid executors: {', '.join(EXECUTORS)} "
            "(local: on this machine, slurm: one SLURM job per run)"
        )


def check_executor(executor: str, slurm: SlurmOptions | None, procs_per_run: int = 1) -> SlurmOptions | None:
    """Refuse, before any work, an unknown executor, SLURM options for the local one, and a SLURM executor where
    submitit or sbatch is missing. Returns the options to submit with (None: the local batch)."""
    check_executor_name(executor)
    if executor == "local":
        if slurm is not None:
            raise ConfigError(
                "SLURM options apply only to SLURM jobs: add --executor slurm, or drop the "
                "--slurm-* options to run on this machine"
            )
        return None
    slurm = slurm or SlurmOptions()
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--executor slurm needs the submitit package: pip install submitit (in the environment "
            f"of {sys.executable}), or run without --executor slurm"
        ) from None
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None] if slurm.cluster == "slurm" else []
    if missing:  # submitit submits with sbatch and starts the job's task with srun
        raise ConfigError(
            f"--executor slurm: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on "
            "PATH, so no SLURM cluster is reachable from this machine. Run the command on the cluster's "
            "login node (SLURM must be reachable from where you submit), or drop --executor slurm to "
            "run here. (The tests use submitit's local executor instead of SLURM.)"
        )
    if slurm.cluster not in ("slurm", "local"):
        raise ConfigError(f"SlurmOptions.cluster must be 'slurm' (or 'local' in tests), got {slurm.cluster!r}")
    if procs_per_run > slurm.gpus_per_run:
        raise ConfigError(
            f"--procs-per-run {procs_per_run} trains each run on {procs_per_run} processes, one GPU "
            f"each, but --slurm-gpus-per-run is {slurm.gpus_per_run}: pass --slurm-gpus-per-run "
            f"{procs_per_run}"
        )
    if slurm.gpus_per_run > procs_per_run:
        print(
            f"warning: --slurm-gpus-per-run {slurm.gpus_per_run}: a run trains on {procs_per_run} device(s) "
            f"(--procs-per-run {procs_per_run}), so the other GPUs of each job stay idle; pass --procs-per-run "
            f"{slurm.gpus_per_run} to train each run on all of them (torchrun)",
            file=sys.stderr,
        )
    return slurm


def make_executor(folder: str | Path, options: SlurmOptions):
    """A submitit executor with the jobs' resources: one node, one task, ``gpus_per_run`` GPUs."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster)
    executor.update_parameters(
        timeout_min=options.time_min,
        nodes=1,
        tasks_per_node=1,
        gpus_per_node=options.gpus_per_run,
        slurm_partition=options.partition,
        slurm_additional_parameters=dict(options.options) or None,
    )
    return executor


class RunJob:
    """What one job runs: the run's notebook, executed by :func:`grl.batch.notebook.execute` into the run folder.

    Checkpointable in submitit's sense (it has ``checkpoint``): on preemption or time-out submitit
    requeues the same call, and the notebook's training resumes from the run's checkpoint.
    """

    def __call__(
        self, name: str, notebook: str, output: str, parameters: dict, cwd: str, procs_per_run: int = 1
    ) -> dict:
        import papermill

        from grl.batch.core import PROCS_PER_RUN
        from grl.batch.notebook import execute

        if procs_per_run > 1:  # the notebook's kernel inherits it and trains the run under torchrun
            os.environ[PROCS_PER_RUN] = str(procs_per_run)

        output_path = Path(output)
        stale = output_path.with_name(f".{output_path.stem}.running.ipynb")
        stale.unlink(missing_ok=True)  # left by a killed or requeued job; this job owns the run folder now
        started = time.time()
        try:
            execute(notebook, output_path, parameters, cwd=cwd)
        except papermill.PapermillExecutionError as exc:
            return {"status": "failed", "notebook": output, "error": _last_line(exc)}
        return {"status": "done", "notebook": output, "seconds": round(time.time() - started, 1)}

    def checkpoint(self, name: str, notebook: str, output: str, *args, **kwargs):
        """Called by submitit on preemption or time-out: let the training save its current step, then requeue the
        same call (as ``submitit.helpers.Checkpointable`` does); the requeued job resumes from that step."""
        from submitit.helpers import DelayedSubmission

        stop_children(run_folder.checkpoint(Path(output).parent))
        return DelayedSubmission(self, name, notebook, output, *args, **kwargs)


def stop_children(checkpoint: Path, timeout: float = 60.0) -> None:
    """SIGTERM to this process's children (the notebook's kernel; under torchrun its ranks), then wait until
    ``checkpoint`` is rewritten -- the trainer writes the current step's on SIGTERM
    (:func:`grl.engine.guards.preemption_watch`) -- or every child has ended, at most ``timeout`` seconds.

    Without it a preempted job would lose the steps since the last epoch's checkpoint: the kernel is killed
    with the job once submitit has requeued it."""
    import psutil

    def stamp():
        return checkpoint.stat().st_mtime_ns if checkpoint.exists() else None

    before, children = stamp(), psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and stamp() == before:
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.1)


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def finished(run: Run) -> bool:
    """Done, as the local batch judges it: result.json holds the run's key and the executed notebook is readable.

    One more case is not finished here: the run asks for the re-ranking evaluation, its result lacks it and
    its model.pt is there to add it — the local batch adds it on this machine, here a job does it on a node.
    """
    from grl.batch.core import notebook_ok

    if not run.is_done() or not notebook_ok(run.run_dir / "experiment.ipynb"):
        return False
    metrics = load_result(run.run_dir, run.config.key())["metrics"]
    return not (
        run.config.rerank and f"{run.config.main_feature}+rerank" not in metrics and run_folder.has_model(run.run_dir)
    )


def run_jobs(
    runs: list[Run],
    notebook: str | Path,
    status_path: str | Path | None = None,
    options: SlurmOptions | None = None,
    folder: str | Path | None = None,
    progress: bool = True,
    executor=None,
    poll_s: float | None = None,
    procs_per_run: int = 1,
):
    """Submit one job per unfinished run, wait for them all (one progress bar over runs), return a
    :class:`grl.batch.core.BatchResult` as :func:`grl.batch.local.run_batch` does.

    ``executor``: a submitit executor to submit with (tests); default :func:`make_executor` on ``folder``.
    A Ctrl-C cancels the jobs in flight (they resume from their checkpoints when resubmitted).
    """
    from tqdm import tqdm

    from grl.batch.core import BatchInterrupted, BatchResult, experiment_parameters
    from grl.utils import atomic_write_json

    notebook = Path(notebook)
    options = options or SlurmOptions()
    outcome, status = BatchResult(), {}
    if poll_s is None:
        poll_s = 0.5 if options.cluster == "local" else 15.0
    bar = tqdm(total=len(runs), desc="runs", unit="run", file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def save() -> None:
        if status_path:
            atomic_write_json(status_path, {"runs": status})

    jobs: dict = {}
    try:
        todo = []
        for run in runs:
            if finished(run):
                outcome.skipped.append(run.name)
                status[run.name] = {"status": "done", "skipped": True}
                bar.update(1)
            else:
                todo.append(run)
        if todo:
            executor = executor or make_executor(folder or Path(status_path or ".").parent / LOGS, options)
        for run in todo:
            executor.update_parameters(name=run.name)
            job = executor.submit(
                RunJob(),
                run.name,
                str(notebook),
                str(run.run_dir / "experiment.ipynb"),
                experiment_parameters(run),
                str(notebook.parent),
                procs_per_run,
            )
            jobs[job] = run
            status[run.name] = {"status": "submitted", "job": str(job.job_id), "log": str(job.paths.stderr)}
        save()
        if todo:
            tqdm.write(f"submitted {len(todo)} jobs; logs in {Path(str(executor.folder))}", file=sys.stderr)
        while jobs:
            bar.set_postfix_str(f"{len(jobs)} queued or running")
            for job in [j for j in jobs if j.done()]:
                run = jobs.pop(job)
                _record(job, run, outcome, status)
                bar.update(1)
                save()
            if jobs:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        raise BatchInterrupted(step=f"the SLURM jobs ({len(jobs)} cancelled; a rerun resubmits them)") from None
    finally:
        bar.close()
    return outcome


def _record(job, run: Run, outcome, status: dict) -> None:
    """One ended job's outcome into ``outcome`` and ``status``, as the local batch records a run."""
    from submitit.core.utils import FailedJobError, UncompletedJobError
    from tqdm import tqdm

    output = run.run_dir / "experiment.ipynb"
    entry = {"job": str(job.job_id), "log": str(job.paths.stderr)}
    try:
        result = job.result()
    except FailedJobError as exc:  # the job raised outside the notebook (e.g. could not start the kernel)
        result = {"status": "failed", "error": f"job {job.job_id}: {_last_line(exc)}"}
    except UncompletedJobError:  # cancelled, killed, out of memory, timed out too often: no result
        result = {
            "status": "failed",
            "error": f"job {job.job_id} ended without a result (state {job.state}); "
            "rerun the same command to resubmit it: it resumes from its checkpoint",
        }
    if result["status"] == "done" and not run.is_done():
        result = {"status": "failed", "error": f"the notebook ended without writing {run.result_path}"}
    if result["status"] == "done":
        outcome.done.append(run.name)
        status[run.name] = {"status": "done", "notebook": str(output), "seconds": result["seconds"], **entry}
        return
    where = result.get("notebook") or entry["log"]  # the executed notebook with its error cell, else the job's log
    outcome.failed[run.name] = where
    status[run.name] = {"status": "failed", "notebook": where, "error": result["error"], **entry}
    tqdm.write(f"FAILED {run.name}: {result['error']}\n  see {where} (job log {entry['log']})", file=sys.stderr)
