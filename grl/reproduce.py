"""Batch reproduction: the catalogue's runs through papermill, then Figure 4 and the report.

papermill has no notion of "done", so this module owns it: a run is done when its
``result.json`` (written atomically by :func:`grl.engine.train`) holds the run's config key
*and* its executed notebook is there and readable (a missing or broken one is executed again:
it loads the result, it does not retrain). Each notebook executes to a temporary path and is
renamed into place when it ends, so a killed batch never leaves a half-written notebook that
looks finished; rerunning the batch skips finished runs and resumes the interrupted one from
its checkpoint. One batch per reports folder at a time (a file lock); before any work, the
folders are checked for writability and free space.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grl.config import DATASETS, ConfigError
from grl.experiments import Run, get_profile, load_result, make_run, profile_dir, runs_for
from grl.paths import project_root
from grl.utils import atomic_write_bytes, atomic_write_json, fault_point

KERNEL = "python3"  # jupyter_client maps the kernel's "python" to this interpreter (sys.executable)
# The kernels' own log lines ("running over TCP without encryption", "KeyboardInterrupt caught in
# kernel" at shutdown) are noise that hides real errors; a failing cell still comes back as a
# PapermillExecutionError with its traceback in the executed notebook. Kernels are stopped at once
# when a notebook ends or the batch is interrupted ("immediate"): a kernel busy training would not
# answer a polite shutdown request, and Ctrl-C would hang.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]
LOCK = ".batch.lock"


class BatchError(RuntimeError):
    """The batch cannot go on (disk full, read-only folder, another batch running); says what to do."""


class ParameterError(ConfigError):
    """A papermill parameter the notebook does not declare, or of the wrong type; names the parameter."""


def notebooks_dir() -> Path:
    root = project_root()
    if root is None or not (root / "notebooks").is_dir():
        raise FileNotFoundError("the notebooks/ folder is not found: batch reproduction needs the source checkout")
    return root / "notebooks"


# ---------------------------------------------------------------------------------------
# data and in-process training
def check_data(runs: list[Run]) -> None:
    """Make sure every run has data: generate the built-in synthetic sets, check given roots up front.

    A "real"-data profile refuses to fall back to synthetic data; a root that does not
    hold its dataset fails here with the loader's DatasetNotFoundError (what is expected where).
    """
    from grl.data import load_config_dataset, load_dataset

    checked: set[tuple[str, str]] = set()
    for run in runs:
        ds, root = run.dataset, run.config.data_root
        if (ds, root) in checked:
            continue
        checked.add((ds, root))
        profile = get_profile(run.profile)
        if not root and profile.data == "real":
            raise ConfigError(
                f"profile {run.profile!r} trains on the real {ds} dataset: give its root with "
                f"--data-root {ds}=/path/to/{ds} (or use --profile cpu for the built-in data)"
            )
        if not root:
            started = time.perf_counter()
            load_config_dataset(run.config.replace(frame_cache=False))  # generates the built-in set when missing
            if time.perf_counter() - started > 2:
                print(
                    f"built-in {ds} data ({run.config.data_size}): generated in {time.perf_counter() - started:.0f} s"
                )
        else:
            load_dataset(ds, root, split=run.split)


def prepare_shared(runs: list[Run], jobs: int = 1) -> None:
    """Make once, before any run starts, what several runs share: the built-in data sets, the pretrained tiny
    backbone and the decoded-frame caches. With ``jobs`` > 1 these independent pieces are made in ``jobs``
    one-thread processes at once (data generation is single-threaded numpy; the pretraining a small network).
    Prints what each cost: it counts in the study's time."""
    from concurrent.futures import ProcessPoolExecutor

    from grl.engine.pretrain import PretrainSpec

    tasks: dict = {}
    for run in runs:
        c = run.config
        if not c.data_root and c.data_version:
            tasks.setdefault(("data", c.dataset, c.data_size), c)
        if c.pretrained and c.backbone == "tiny":
            tasks.setdefault(("pretrain", PretrainSpec.from_config(c)), c)
    # The pretraining first: it is the longest piece.
    order = sorted(tasks, key=lambda t: t[0] != "pretrain")
    if jobs > 1 and len(order) > 1:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread_worker) as pool:
            futures = {t: pool.submit(_prepare_one, t[0], tasks[t].to_dict()) for t in order}
            for t, future in futures.items():
                _report_prepared(t, future.result())
    else:
        for t in order:
            _report_prepared(t, _prepare_one(t[0], tasks[t].to_dict()))
    from grl.data import load_config_dataset

    made: set = set()
    for run in runs:
        c = run.config
        if c.frame_cache and c.data_version and (c.dataset, c.data_version, c.height, c.width) not in made:
            made.add((c.dataset, c.data_version, c.height, c.width))
            started = time.perf_counter()
            load_config_dataset(c)  # builds the frame cache when it is missing
            if time.perf_counter() - started > 1:
                print(f"frame cache {c.dataset} {c.height}x{c.width}: made in {time.perf_counter() - started:.0f} s")


def _one_thread_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _prepare_one(kind: str, values: dict) -> float:
    """One piece of :func:`prepare_shared` (in a worker process): seconds it took, 0 when it was there."""
    from grl.config import Config

    config = Config.from_dict(values)
    started = time.perf_counter()
    if kind == "pretrain":
        from grl.engine.pretrain import PretrainSpec, ensure_pretrained, read_pretrained

        spec = PretrainSpec.from_config(config)
        if read_pretrained(spec.path(), spec) is not None:
            return 0.0
        ensure_pretrained(config, progress=False)
    else:
        from grl.data import synthetic
        from grl.data.synthetic.store import read_manifest

        sizes = synthetic.preset_sizes(config.data_size, config.dataset)
        root = synthetic.default_root(config.dataset, config.data_size)
        manifest = read_manifest(root)
        if (
            manifest
            and manifest.get("version") == synthetic.GENERATOR_VERSION
            and manifest.get("sizes") == synthetic.resolve_sizes(config.dataset, **sizes)
        ):
            return 0.0
        synthetic.ensure_synthetic(config.dataset, root=root, **sizes)
    return time.perf_counter() - started


def _report_prepared(task: tuple, seconds: float) -> None:
    if seconds > 0:
        what = (
            f"pretrained backbone {task[1].path().name}"
            if task[0] == "pretrain"
            else f"built-in {task[1]} data ({task[2]})"
        )
        print(f"{what}: made in {seconds:.0f} s", flush=True)


def run_or_load(run: Run, progress: bool = True) -> dict:
    """The run's result: loaded if result.json holds its config, else trained now (resuming a checkpoint)."""
    from grl.engine.trainer import complete_evaluation

    result = complete_evaluation(run.config, run.run_dir)
    if result is not None:
        return result
    from grl.engine import train

    check_data([run])  # cheap when the data are there; generates the built-in sets otherwise
    procs = procs_per_run()
    if procs > 1 and "WORLD_SIZE" not in os.environ:
        return _train_with_torchrun(run, procs)
    return train(run.config, run.run_dir, progress=progress)


PROCS_PER_RUN = "GRL_PROCS_PER_RUN"  # set by `reproduce --procs-per-run N` for the kernels it starts


def procs_per_run() -> int:
    value = os.environ.get(PROCS_PER_RUN, "1")
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(
            f"{PROCS_PER_RUN}={value!r}: expected a whole number >= 1 (processes per run, `reproduce --procs-per-run`)"
        )
    return int(value)


def _train_with_torchrun(run: Run, procs: int) -> dict:
    """Train ``run`` on ``procs`` processes together (DistributedDataParallel, grl.engine.distributed): the
    notebook's kernel launches ``torchrun --standalone --nproc_per_node procs -m grl train`` and waits."""
    import subprocess

    from grl.engine import distributed

    distributed.check_world_size(run.config.batch_size, procs)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={procs}",
        "-m",
        "grl",
        "train",
        "--experiment",
        run.experiment,
        "--profile",
        run.profile,
        "--dataset",
        run.dataset,
        "--split",
        str(run.split),
        "--seed",
        str(run.config.seed),
        "--data-root",
        run.config.data_root,
        "--run-dir",
        str(run.run_dir),
        "--recipe",
        run.config.recipe,
    ]
    print(f"training {run.name} on {procs} processes: {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, env={k: v for k, v in os.environ.items() if k != PROCS_PER_RUN})
    if done.returncode != 0:
        raise RuntimeError(f"torchrun exited with {done.returncode} training {run.name} (its output is above)")
    result = load_result(run.run_dir, run.config.key())
    if result is None:
        raise RuntimeError(f"torchrun ended without writing {run.result_path}")
    return result


def ensure_run(
    experiment: str,
    dataset: str,
    profile: str = "quick",
    split: int = 0,
    seed: int = 0,
    data_root: str = "",
    root: str | Path | None = None,
) -> Path:
    """Train one catalogue run in-process if its result.json is missing; return its run_dir."""
    run = make_run(experiment, dataset, profile, split=split, seed=seed, data_root=data_root, root=root)
    if not run.is_done():
        run_or_load(run, progress=False)
    return run.run_dir


def ensure_runs(
    profile: str = "quick",
    only: str | None = None,
    dataset: str | None = None,
    seeds: tuple[int, ...] | None = None,
    root: str | Path | None = None,
    progress: bool = True,
    recipe: str | None = None,
) -> list[Run]:
    """Train every missing run of a profile (every seed) in-process (for the quick profile: a couple of minutes)."""
    from tqdm import tqdm

    runs = runs_for(profile, only, dataset, seeds=seeds, root=root, recipe=recipe)
    missing = [r for r in runs if not r.is_done()]
    if missing:
        check_data(missing)
    for run in tqdm(missing, desc=f"training missing {profile} runs", file=sys.stderr, disable=not progress):
        run_or_load(run, progress=False)
    return runs


# ---------------------------------------------------------------------------------------
# papermill
def validate_parameters(notebook: str | Path, parameters: dict) -> None:
    """Refuse names the notebook's ``parameters`` cell does not declare and values of the wrong type."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    if not declared:
        raise ParameterError(f"{notebook}: no cell tagged 'parameters', so no parameter can be passed")
    allowed = {
        "str": (str,),
        "int": (int,),
        "float": (int, float),
        "bool": (bool,),
        "list": (list, tuple),
        "dict": (dict,),
    }
    for name, value in parameters.items():
        if name not in declared:
            raise ParameterError(
                f"{Path(notebook).name}: unknown parameter {name!r}; declared parameters: {', '.join(declared)}"
            )
        expected = declared[name].get("inferred_type_name", "None")
        if expected == "None":  # no annotation: judge by the default's literal type
            try:
                expected = type(ast.literal_eval(str(declared[name].get("default")))).__name__
            except (ValueError, SyntaxError):
                continue
        types = allowed.get(expected)
        if types is None:  # None / untyped default: anything goes
            continue
        if not isinstance(value, types) or (expected in ("int", "float") and isinstance(value, bool)):
            raise ParameterError(
                f"{Path(notebook).name}: parameter {name!r} must be {expected} "
                f"(default {declared[name].get('default')}), got {value!r} ({type(value).__name__})"
            )


def refuse_undeclared_parameters(history: list[str], notebook: str) -> None:
    """Called by each notebook right after its parameters: refuse what plain ``papermill -p`` lets through.

    papermill only warns about a parameter the notebook does not declare, then runs on with it
    ignored. ``history`` is IPython's ``In``: the first executed cell is the one tagged
    ``parameters``; a cell papermill injected starts with "# Parameters". A name injected but not
    declared, or a value whose type differs from the declared default's, raises naming it.
    """
    cells = [c for c in history if c.strip()]
    if len(cells) < 2 or not cells[1].lstrip().startswith("# Parameters"):
        return  # not run by papermill with parameters (JupyterLab, nbval)
    declared, injected = _assignments(cells[0]), _assignments(cells[1])
    unknown = sorted(set(injected) - set(declared))
    if unknown:
        raise ParameterError(f"{notebook}: unknown parameter(s) {unknown}; declared parameters: {', '.join(declared)}")
    for name, value in injected.items():
        default = declared[name]
        if default is _UNPARSED or value is _UNPARSED or default is None:
            continue
        ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
        if not ok or (isinstance(value, bool) and not isinstance(default, bool)):
            raise ParameterError(
                f"{notebook}: parameter {name!r} must be {type(default).__name__} "
                f"(default {default!r}), got {value!r} ({type(value).__name__})"
            )


_UNPARSED = object()


def _assignments(source: str) -> dict:
    """name -> literal value (or _UNPARSED) of every top-level assignment in a cell's source."""
    values = {}
    for node in ast.parse(source).body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        )
        if isinstance(target, ast.Name) and node.value is not None:
            try:
                values[target.id] = ast.literal_eval(node.value)
            except ValueError:
                values[target.id] = _UNPARSED
    return values


def execute(
    notebook: str | Path,
    output: str | Path,
    parameters: dict,
    cwd: str | Path | None = None,
    kernel: "Kernel | None" = None,
) -> Path:
    """Execute ``notebook`` with papermill to a temp file beside ``output``, then rename it into place.

    Also on failure the executed copy (with its error cell) is renamed to ``output`` before the
    ``PapermillExecutionError`` propagates, so the error can be read where the run lives. With a
    :class:`Kernel` the notebook runs in that (already started) kernel after its namespace is reset;
    without, in a fresh kernel of its own.
    """
    import papermill

    validate_parameters(notebook, parameters)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.running.ipynb")
    engine = {} if kernel is None else {"engine_name": _register_reused_engine(), "kernel": kernel}
    try:
        papermill.execute_notebook(
            str(notebook),
            str(tmp),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(cwd or Path(notebook).parent),
            progress_bar=False,
            extra_arguments=KERNEL_ARGS,
            shutdown_kernel="immediate",
            **engine,
        )
    except papermill.PapermillExecutionError:
        if tmp.exists():
            os.replace(tmp, output)
        raise
    fault_point("before-notebook-rename")
    os.replace(tmp, output)
    return output


class Kernel:
    """One started Jupyter kernel that executes several runs' notebooks, one after another.

    Starting a kernel and importing torch and grl took most of a quick run (a few seconds each);
    a batch keeps one kernel per job instead. Before each notebook the kernel's namespace and
    input history are reset (IPython ``reset(new_session=True)``), so a notebook sees no name of
    the previous one and ``refuse_undeclared_parameters`` reads only its own cells; imported
    modules stay loaded, which is the saving. Every run seeds its own random state
    (:func:`grl.engine.train`), so its numbers do not depend on what ran before in the kernel
    (tests/test_reproduce.py checks this against fresh kernels). A kernel that died is replaced.
    """

    def __init__(self, cwd: str | Path, gpu: str | None = None):
        from jupyter_client.manager import AsyncKernelManager

        self.cwd, self.gpu = str(cwd), gpu  # gpu: this job's CUDA_VISIBLE_DEVICES (one GPU per job)
        self.manager = AsyncKernelManager(kernel_name=KERNEL)

    def ensure_started(self) -> None:
        from jupyter_core.utils import run_sync

        if self.manager.has_kernel and run_sync(self.manager.is_alive)():
            return
        if self.manager.has_kernel:  # it died (e.g. out of memory in the previous run): a new manager, a new kernel
            from jupyter_client.manager import AsyncKernelManager

            with contextlib.suppress(Exception):
                run_sync(self.manager.shutdown_kernel)(now=True)
            self.manager = AsyncKernelManager(kernel_name=KERNEL)  # the old one's sockets are closed for good
        env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": self.gpu} if self.gpu is not None else {})}
        run_sync(self.manager.start_kernel)(extra_arguments=KERNEL_ARGS, cwd=self.cwd, env=env)

    def shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        if self.manager.has_kernel:
            with contextlib.suppress(Exception):
                run_sync(self.manager.shutdown_kernel)(now=True)


def _register_reused_engine() -> str:
    """A papermill engine that executes in a given :class:`Kernel` and leaves it running."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class ReusedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            kernel: Kernel = kwargs["kernel"]
            kernel.ensure_started()
            client = PapermillNotebookClient(
                nb_man,
                km=kernel.manager,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )

            async def reset_namespace(**_):
                msg_id = client.kc.execute("get_ipython().reset(new_session=True)", silent=True, store_history=False)
                await client.async_wait_for_reply(msg_id)

            client.on_notebook_start = reset_namespace
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(_REUSED_ENGINE, ReusedKernelEngine)
    return _REUSED_ENGINE


_REUSED_ENGINE = "grl-reused-kernel"


def notebook_ok(path: Path) -> bool:
    """An executed notebook is there and readable (one that is not is set aside, with a warning)."""
    import nbformat

    from grl.utils import set_aside

    if not path.is_file():
        return False
    try:
        nbformat.read(path, as_version=4)
        return True
    except Exception as exc:  # truncated JSON, not a notebook, unreadable file
        set_aside(path, f"not a readable notebook ({type(exc).__name__})")
        return False


def experiment_parameters(run: Run) -> dict:
    return {
        "experiment": run.experiment,
        "profile": run.profile,
        "dataset": run.dataset,
        "data_root": run.config.data_root,
        "seed": run.config.seed,
        "split": run.split,
        "output_dir": str(run.run_dir),
        "recipe": run.config.recipe,
    }


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run name -> executed notebook / reason


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
                    raise BatchError(_os_error_message(exc, Path(status_path))) from None

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
                _stop_kernels()  # the running kernels end now (their threads then return), not when their runs finish
                if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, BatchInterrupted):
                    raise BatchInterrupted(next(iter(running.values()), None)) from None
                raise
    except BaseException:
        _stop_kernels()  # a kernel busy training would not answer a polite shutdown request
        raise
    finally:
        bar.close()
        for kernel in every_kernel:
            kernel.shutdown()
    return outcome


def _stop_kernels() -> None:
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
        from grl.engine.trainer import complete_evaluation

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
        _stop_if_out_of_space(exc, run.run_dir)
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        with lock:
            outcome.failed[run.name] = str(output)
            status[run.name] = {"status": "failed", "notebook": str(output), "error": reason}
        tqdm.write(f"FAILED {run.name}: {reason}\n  see the executed notebook {output}", file=sys.stderr)
    except OSError as exc:
        raise BatchError(_os_error_message(exc, run.run_dir)) from None


class BatchInterrupted(KeyboardInterrupt):
    def __init__(self, run: Run | None = None, step: str = ""):
        super().__init__(run.name if run else step)
        self.run, self.step = run, step

    def message(self) -> str:
        where = f"run {self.run.name}" if self.run else (self.step or "the batch")
        return f"interrupted during {where}; nothing finished is lost — rerun the same command to resume" + (
            " it from its last checkpoint" if self.run else ""
        )


def _os_error_message(exc: OSError, where: Path) -> str:
    path = exc.filename or where
    what = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the folder is read-only",
        errno.EACCES: "permission denied",
        errno.EDQUOT: "the disk quota is exceeded",
    }.get(exc.errno, exc.strerror)
    return (
        f"{path}: {what} ({exc.strerror}). Free some space or make the folder writable (or pass --root "
        "to write elsewhere), then rerun the same command: finished runs are kept and the rest resumes."
    )


def _stop_if_out_of_space(exc: Exception, where: Path) -> None:
    """A run that failed because the disk is full or read-only is no failure of the run: stop the batch."""
    text = str(exc)
    for code, words in (
        (errno.ENOSPC, "No space left on device"),
        (errno.EROFS, "Read-only file system"),
        (errno.EDQUOT, "Disk quota exceeded"),
    ):
        if words in text:
            raise BatchError(_os_error_message(OSError(code, words), where)) from None


# ---------------------------------------------------------------------------------------
# before any work: one batch per folder, writable folders, enough space
@contextlib.contextmanager
def batch_lock(folder: Path):
    """Hold ``folder/.batch.lock`` for the batch. A second batch on the same folder refuses at once,
    naming the holder's PID; a lock left by a killed process is free again (the OS drops it)."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK))
    holder = folder / (LOCK + ".json")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            who = json.loads(holder.read_text())
        except (OSError, ValueError):
            who = {}
        raise BatchError(
            f"another batch (PID {who.get('pid', '?')}, started {who.get('started', '?')}: "
            f"{who.get('command', '?')}) is running on {folder}; wait for it to finish or stop it. "
            "This invocation did nothing."
        ) from None
    try:
        atomic_write_json(
            holder, {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        )
        yield
    finally:
        lock.release()


def run_bytes(run: Run) -> int:
    """Rough disk need of one run: checkpoint (weights, optimiser state, lookup tables) + model.pt + notebook."""
    import torch

    from grl.models import build_model

    with torch.device("meta"):  # sizes only: no memory, no pretrained weights
        model = build_model(run.config.replace(pretrained=False))
    weights = sum(p.numel() for p in model.parameters()) * torch.finfo(run.config.torch_dtype).bits // 8
    return 4 * weights + (4 << 20)


def preflight(out: Path, runs: list[Run]) -> None:
    """Refuse, with one message, a reports or data folder that is not writable or lacks the space the
    missing runs need."""
    from grl.paths import data_dir

    for folder in (out, data_dir()):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable-"):
                pass
        except OSError as exc:
            raise BatchError(
                f"{folder} is not writable ({exc.strerror}): the batch writes its "
                f"{'runs and report' if folder == out else 'generated data'} there. Make it writable, "
                "or choose another folder (--root for reports, GRL_DATA_DIR for data)."
            ) from None
    missing = [r for r in runs if not r.is_done()]
    if not missing:
        return
    need = run_bytes(missing[0]) * len(missing)
    free = shutil.disk_usage(out).free
    if free < need:
        raise BatchError(
            f"{out}: {len(missing)} runs to train need about {need / 2**30:.2f} GiB "
            f"(checkpoints, weights, notebooks), but only {free / 2**30:.2f} GiB are free. "
            "Free some space or pass --root to write elsewhere."
        )


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
) -> int:
    """Run the selected catalogue for every seed (``jobs`` runs at once), then Figure 4 and the report; return a
    process exit code.

    ``executor="slurm"`` submits each unfinished run as a SLURM job instead (:mod:`grl.cluster`, with the
    :class:`grl.cluster.SlurmOptions` ``slurm``); the report is built here the same way when they end.

    The report (report.html, report.md, results.csv) describes exactly this selection and never
    trains anything itself; report.html and report.md are written together, or neither is.
    """
    from grl import cluster

    slurm = cluster.check_executor(
        executor, slurm, procs_per_run
    )  # before anything else: a missing sbatch is said at once
    out = profile_dir(profile, root)
    seeds = get_profile(profile).seeds if seeds is None else tuple(seeds)
    runs = runs_for(profile, only, dataset, seeds=seeds, data_roots=data_roots, root=root, recipe=recipe)
    nb_dir = notebooks_dir()
    for run in runs:  # every parameter checked before anything heavy starts
        validate_parameters(nb_dir / "experiment.ipynb", experiment_parameters(run))
    report_parameters = {
        "profile": profile,
        "reports_dir": str(out),
        "seeds": ",".join(map(str, seeds)),
        "reference": str(reference or ""),
        "recipe": recipe or "",
        "train_missing": False,
        "only": only or "",
        "dataset": dataset or "",
        "data_roots": ",".join(f"{k}={v}" for k, v in sorted((data_roots or {}).items())),
    }
    validate_parameters(nb_dir / "report.ipynb", report_parameters)
    jobs = check_jobs(jobs)
    with batch_lock(out):
        preflight(out, runs)
        print(
            f"profile {profile!r}, seeds {','.join(map(str, seeds))}: {len(runs)} runs "
            f"({sum(r.is_done() for r in runs)} already done) -> {out}"
        )
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
            raise BatchError(_os_error_message(exc, out)) from None
        if slurm is not None:
            batch = cluster.run_jobs(
                runs,
                nb_dir / "experiment.ipynb",
                status_path=out / "status.json",
                options=slurm,
                folder=out / cluster.LOGS,
                procs_per_run=procs_per_run,
            )
        else:
            batch = run_batch(
                runs,
                nb_dir / "experiment.ipynb",
                status_path=out / "status.json",
                jobs=jobs,
                procs_per_run=procs_per_run,
            )
        failures = dict(batch.failed)
        try:
            _figure4_and_report(profile, out, nb_dir, runs, seeds, reference, report_parameters, failures)
        except KeyboardInterrupt:
            raise BatchInterrupted(step="the report (the runs are all kept)") from None
        except OSError as exc:
            raise BatchError(_os_error_message(exc, out)) from None
    print(f"runs: {len(batch.done)} trained, {len(batch.skipped)} already done, {len(batch.failed)} failed")
    for name, path in failures.items():
        print(f"  FAILED {name}: {path}")
    return 1 if failures else 0


def _figure4_and_report(profile, out, nb_dir, runs, seeds, reference, report_parameters, failures) -> None:
    kernel = Kernel(nb_dir)  # one kernel for both notebooks: the second one skips the start and the imports
    try:
        _figure4_and_report_in(kernel, profile, out, nb_dir, runs, seeds, reference, report_parameters, failures)
    except BaseException:
        _stop_kernels()
        raise
    finally:
        kernel.shutdown()


def _figure4_and_report_in(kernel, profile, out, nb_dir, runs, seeds, reference, report_parameters, failures) -> None:
    from grl.report import results_frame, write_results_csv
    from grl.summary import report_markdown

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
    from grl.report import save_figures

    save_figures(out, runs)
    markdown = report_markdown(profile, runs, reference, figures_dir=out)
    report_nb = out / "report.ipynb"
    if _step("report", nb_dir / "report.ipynb", report_nb, report_parameters, failures, kernel):
        html = export_html_text(report_nb)
        atomic_write_bytes(out / "report.html", html.encode())  # the two together: one right after the other
        atomic_write_bytes(out / "report.md", markdown.encode())
        print(f"report: {out / 'report.html'} and {out / 'report.md'}")
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
        _stop_if_out_of_space(exc, output.parent)
        failures[what] = str(output)
        print(f"FAILED {what}: {str(exc).strip().splitlines()[-1]}; see {output}", file=sys.stderr)
        return False


def export_html_text(notebook: str | Path) -> str:
    """Reader-facing HTML of an executed notebook, without code cells."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(exclude_input=True).from_filename(str(notebook))
    return body.replace("</head>", f"<style>{PRINT_CSS}</style>\n</head>", 1)


# On screen a table cell never wraps (no "mi / xed"); an A4 page is narrower than Table 2's six columns,
# so in print cells wrap between words (never inside one), tables get a smaller font and text outputs wrap.
PRINT_CSS = """
@media print {
  table { font-size: 7.5pt !important; }
  td, th { white-space: normal !important; word-break: keep-all; overflow-wrap: normal; }
  pre { white-space: pre-wrap !important; word-break: normal !important; overflow-wrap: break-word; }
  .jp-OutputArea-output, .jp-RenderedHTMLCommon, .jp-Cell { overflow: visible !important; }
  img { max-width: 100% !important; height: auto !important; }
}
"""


# ---------------------------------------------------------------------------------------
def refresh_notebooks(names: list[str] | None = None, fresh: bool = True) -> list[Path]:
    """Re-execute the committed notebooks in place with their default (quick) parameters.

    ``fresh``: compute into an empty temporary reports folder, as CI's fresh clone does,
    so stored outputs never come from stale runs of an older code version.
    """
    import nbformat

    nb_dir = notebooks_dir()
    paths = [nb_dir / n for n in names] if names else sorted(nb_dir.glob("*.ipynb"))
    saved = os.environ.get("GRL_REPORTS_DIR")
    with tempfile.TemporaryDirectory(prefix="grl-refresh-") as tmp:
        if fresh:
            os.environ["GRL_REPORTS_DIR"] = tmp  # inherited by the kernels papermill starts
        try:
            for path in paths:
                print(f"refreshing {path.name}")
                out = Path(tmp) / path.name
                import papermill

                papermill.execute_notebook(
                    str(path),
                    str(out),
                    kernel_name=KERNEL,
                    cwd=str(nb_dir),
                    progress_bar=False,
                    extra_arguments=KERNEL_ARGS,
                )
                nb = nbformat.read(out, as_version=4)
                nb.metadata.pop("papermill", None)  # timestamps only: keep the diff to real output changes
                for cell in nb.cells:
                    cell.metadata.pop("papermill", None)
                    cell.metadata.pop("execution", None)
                atomic_write_bytes(path, nbformat.writes(nb).encode())
        finally:
            if saved is None:
                os.environ.pop("GRL_REPORTS_DIR", None)
            else:
                os.environ["GRL_REPORTS_DIR"] = saved
    return paths


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
