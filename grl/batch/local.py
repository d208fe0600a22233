"""The local executor: the catalogue's unfinished runs on this machine, ``--jobs N`` at once, the cores (or GPUs)
divided among the jobs, a Ctrl-C that stops the runs in flight within seconds, ``status.json`` kept current.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from grl.batch.core import (
    PROCS_PER_RUN,
    BatchError,
    BatchInterrupted,
    BatchResult,
    experiment_parameters,
    notebook_ok,
    notebooks_dir,
)
from grl.batch.locks import os_error_message, stop_if_out_of_space
from grl.batch.notebook import Kernel, execute, validate_parameters
from grl.config import ConfigError
from grl.experiments import Run, get_profile
from grl.utils import atomic_write_json


def run_batch(
    runs: list[Run],
    notebook: str | Path | None = None,
    status_path: str | Path | None = None,
    progress: bool = True,
    jobs: int = 1,
    procs_per_run: int = 1,
) -> BatchResult:
    """Execute the experiment notebook once per unfinished run, ``jobs`` at a time (:func:`check_jobs`).

    Parameters of every run are validated before the first kernel starts. A failing run
    is recorded (with its executed notebook) and the next run still runs. A run whose result
    is there but whose executed notebook is not (killed between the two, or deleted) gets its
    notebook again (it loads the result). A full disk or a read-only folder stops the batch
    with a :class:`BatchError` naming the path; Ctrl-C stops it with :class:`BatchInterrupted`.
    """
    notebook = Path(notebook) if notebook else notebooks_dir() / "experiment.ipynb"
    for run in runs:
        validate_parameters(notebook, experiment_parameters(run))
    jobs = check_jobs(jobs)
    if isinstance(procs_per_run, bool) or not isinstance(procs_per_run, int) or procs_per_run < 1:
        raise ConfigError(f"--procs-per-run must be a whole number >= 1, got {procs_per_run!r}")
    from grl.engine.distributed import check_world_size

    for run in runs:
        check_world_size(run.config.batch_size, procs_per_run)
    gpus = gpu_per_job(runs, jobs, procs_per_run)
    with _sigint_noted() as interrupted, kernel_threads(jobs * procs_per_run), _procs_env(procs_per_run):
        return _run_batch(runs, notebook, status_path, progress, interrupted, jobs, gpus)


@contextlib.contextmanager
def _procs_env(procs: int):
    """The kernels started inside see ``GRL_PROCS_PER_RUN`` (read by :func:`run_or_load`)."""
    saved = os.environ.get(PROCS_PER_RUN)
    if procs > 1:
        os.environ[PROCS_PER_RUN] = str(procs)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(PROCS_PER_RUN, None)
        else:
            os.environ[PROCS_PER_RUN] = saved


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES names them (empty without CUDA)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return (listed or [str(i) for i in range(count)])[:count]


def gpu_per_job(runs: list[Run], jobs: int, procs_per_run: int = 1) -> list[str] | None:
    """On a GPU machine each job's kernel sees GPUs of its own (CUDA_VISIBLE_DEVICES: ``procs_per_run`` of
    them, one per torchrun process), so ``jobs`` runs train at once; None where the runs train on the CPU."""
    if all(run.config.device == "cpu" for run in runs):
        return None
    gpus = visible_gpus()
    if not gpus:
        return None  # device "auto" without CUDA: the CPU
    if jobs * procs_per_run > len(gpus):
        per = f" × --procs-per-run {procs_per_run}" if procs_per_run > 1 else ""
        raise ConfigError(
            f"--jobs {jobs}{per} needs {jobs * procs_per_run} GPUs but {len(gpus)} are visible "
            f"({','.join(gpus)}): each job trains on GPUs of its own. Pass --jobs "
            f"{max(1, len(gpus) // procs_per_run)} or fewer, or make more GPUs visible "
            "(CUDA_VISIBLE_DEVICES)."
        )
    return [",".join(gpus[j * procs_per_run : (j + 1) * procs_per_run]) for j in range(jobs)]


def cpu_cores() -> int:
    """Cores this process may use (its affinity mask, e.g. under taskset or a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_jobs(profile: str) -> int:
    """One run per core for the CPU profiles (each on one thread: measured faster than one run on all cores)."""
    return cpu_cores() if get_profile(profile).overrides.get("device") == "cpu" else 1


def check_jobs(jobs: int) -> int:
    """``--jobs``: at least 1; more jobs than cores would oversubscribe them, so it is capped with a warning."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1 (runs trained at once), got {jobs!r}")
    cores = cpu_cores()
    if jobs > cores:
        print(
            f"warning: --jobs {jobs} is more than the {cores} cores this process may use; running {cores} at once "
            "(more would only slow every run down)",
            file=sys.stderr,
        )
        jobs = cores
    return jobs


@contextlib.contextmanager
def kernel_threads(jobs: int):
    """With ``jobs`` > 1, each kernel gets cores // jobs threads (its environment), never more in total than the
    cores: two runs that each use every core were 7-40x slower here. A profile's own ``threads`` still wins."""
    if jobs == 1:
        yield
        return
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: str(max(1, cpu_cores() // jobs)) for n in names})
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


@contextlib.contextmanager
def _sigint_noted():
    """Note a Ctrl-C even where a library swallows the KeyboardInterrupt (nbclient may turn it into a
    kernel interrupt and a failed cell): the batch checks the flag after every run and stops."""
    import threading

    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def note(signum, frame):
        flag.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_batch(runs, notebook, status_path, progress, interrupted, jobs=1, gpus=None) -> BatchResult:
    import threading
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from tqdm import tqdm

    outcome = BatchResult()
    status: dict[str, dict] = {}
    lock = threading.Lock()
    bar = tqdm(total=len(runs), desc="runs", unit="run", file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def finish(run: Run) -> None:
        with lock:
            bar.update(1)
            if status_path:
                try:
                    atomic_write_json(status_path, {"runs": status})
                except OSError as exc:
                    raise BatchError(os_error_message(exc, Path(status_path))) from None

    import queue

    kernels: queue.Queue = queue.Queue()  # one started kernel per job, reused by its runs (see Kernel)
    for job in range(jobs):
        kernels.put(Kernel(notebook.parent, gpus[job] if gpus else None))
    every_kernel = list(kernels.queue)
    try:  # the bar is closed before the caller's one-line message, not redrawn after it
        if jobs == 1:
            for run in runs:
                bar.set_postfix_str(run.name)
                _one_run(run, notebook, outcome, status, interrupted, lock, kernels)
                if interrupted.is_set():
                    raise BatchInterrupted(run)
                finish(run)
            return outcome
        # Several at once: each run's notebook in its job's kernel; the first error that stops a batch stops this one.
        pending = list(runs)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            running: dict = {}
            try:
                while pending or running:
                    while pending and len(running) < jobs and not interrupted.is_set():
                        run = pending.pop(0)
                        running[pool.submit(_one_run, run, notebook, outcome, status, interrupted, lock, kernels)] = run
                    bar.set_postfix_str(", ".join(r.name.split("-split")[0] for r in running.values()))
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in finished:
                        run = running.pop(future)
                        future.result()  # BatchError / BatchInterrupted propagate
                        finish(run)
                    if interrupted.is_set():
                        raise BatchInterrupted(next(iter(running.values()), run))
            except BaseException as exc:
                interrupted.set()  # no new run starts
                for future in running:
                    future.cancel()
                stop_kernels()  # the running kernels end now (their threads then return), not when their runs finish
                if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, BatchInterrupted):
                    raise BatchInterrupted(next(iter(running.values()), None)) from None
                raise
    except BaseException:
        stop_kernels()  # a kernel busy training would not answer a polite shutdown request
        raise
    finally:
        bar.close()
        for kernel in every_kernel:
            kernel.shutdown()
    return outcome


def stop_kernels() -> None:
    """Kill this process's child processes (the running notebooks' kernels): a stopped batch must not wait for
    the runs in flight; each resumes from its last checkpoint on the next batch."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=10)


def _one_run(run: Run, notebook: Path, outcome: BatchResult, status: dict, interrupted, lock, kernels=None) -> None:
    """Execute one run's notebook (or skip a finished one), recording the outcome under ``lock``; the
    notebook runs in a kernel taken from the queue ``kernels`` (and put back), or in a fresh one."""
    import papermill
    from tqdm import tqdm

    output = run.run_dir / "experiment.ipynb"
    stale_tmp = output.with_name(f".{output.stem}.running.ipynb")
    if stale_tmp.exists():  # left by a killed batch; this batch holds the folder's lock
        stale_tmp.unlink()
    done = run.is_done()
    if done and notebook_ok(output):
        from grl.engine.inference import complete_evaluation

        complete_evaluation(run.config, run.run_dir)  # e.g. re-ranking asked for after the run finished
        with lock:
            outcome.skipped.append(run.name)
            status[run.name] = {"status": "done", "skipped": True}
        return
    started = time.time()
    try:
        kernel = kernels.get() if kernels is not None else None
        try:
            execute(notebook, output, experiment_parameters(run), cwd=notebook.parent, kernel=kernel)
        finally:
            if kernel is not None:
                kernels.put(kernel)
        if not run.is_done():
            raise RuntimeError(f"the notebook ended without writing {run.result_path}")
        with lock:
            (outcome.skipped if done else outcome.done).append(run.name)
            status[run.name] = {"status": "done", "notebook": str(output), "seconds": round(time.time() - started, 1)}
    except KeyboardInterrupt:
        raise BatchInterrupted(run) from None
    except (papermill.PapermillExecutionError, RuntimeError) as exc:
        if interrupted.is_set():
            raise BatchInterrupted(run) from None
        stop_if_out_of_space(exc, run.run_dir)
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        with lock:
            outcome.failed[run.name] = str(output)
            status[run.name] = {"status": "failed", "notebook": str(output), "error": reason}
        tqdm.write(f"FAILED {run.name}: {reason}\n  see the executed notebook {output}", file=sys.stderr)
    except OSError as exc:
        raise BatchError(os_error_message(exc, run.run_dir)) from None
