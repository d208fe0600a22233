"""How one notebook is executed: papermill's parameters checked against the notebook's ``parameters`` cell, the
execution into a temporary path renamed into place when it ends (a killed batch never leaves a half-written
notebook that looks finished), one reused Jupyter kernel per job, and ``make notebooks``' refresh of the stored
outputs.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from grl.batch.core import KERNEL, KERNEL_ARGS, ParameterError, notebooks_dir
from grl.utils import atomic_write_bytes, fault_point


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
    own_kernel = kernel is None
    if own_kernel:  # a kernel of its own, on the same local sockets as a batch's (see Kernel)
        kernel = Kernel(cwd or Path(notebook).parent)
    engine = {"engine_name": _register_reused_engine(), "kernel": kernel}
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
    finally:
        if own_kernel:
            kernel.shutdown()
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

    The kernel talks over Unix sockets in a private folder, not TCP: with TCP the client picks "free" ports and
    the kernel binds them a moment later, and a port taken in between killed the kernel's heartbeat thread with
    ``ZMQError: Address already in use`` (seen in a batch of two jobs).
    """

    def __init__(self, cwd: str | Path, gpu: str | None = None):
        self.cwd, self.gpu = str(cwd), gpu  # gpu: this job's CUDA_VISIBLE_DEVICES (one GPU per job)
        self.manager = _kernel_manager()

    def ensure_started(self) -> None:
        from jupyter_core.utils import run_sync

        if self.manager.has_kernel and run_sync(self.manager.is_alive)():
            return
        if self.manager.has_kernel:  # it died (e.g. out of memory in the previous run): a new manager, a new kernel
            _discard(self.manager)
            self.manager = _kernel_manager()  # the old one's sockets are closed for good
        env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": self.gpu} if self.gpu is not None else {})}
        run_sync(self.manager.start_kernel)(extra_arguments=KERNEL_ARGS, cwd=self.cwd, env=env)

    def shutdown(self) -> None:
        _discard(self.manager)


def _kernel_manager():
    """A kernel manager whose kernel listens on Unix sockets ``<private folder>/k-<n>`` (TCP where there are none).

    The path is absolute because the kernel runs in the run's folder while the client stays where the batch
    started; the folder is new for each manager, so two kernels never pick the same socket."""
    from jupyter_client.manager import AsyncKernelManager

    if os.name == "nt":
        return AsyncKernelManager(kernel_name=KERNEL)
    folder = tempfile.mkdtemp(prefix="grl-kernel-")
    return AsyncKernelManager(kernel_name=KERNEL, transport="ipc", ip=os.path.join(folder, "k"))


def _discard(manager) -> None:
    """Stop the manager's kernel (if any) and remove its socket folder."""
    from jupyter_core.utils import run_sync

    if manager.has_kernel:
        with contextlib.suppress(Exception):
            run_sync(manager.shutdown_kernel)(now=True)
    if manager.transport == "ipc":
        shutil.rmtree(Path(manager.ip).parent, ignore_errors=True)


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
