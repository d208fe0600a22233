"""The batch's vocabulary, shared by every executor: when a run counts as done (``notebook_ok``), the
papermill parameters of a run, the batch's outcome and its errors. Imports nothing else of the batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from grl.config import ConfigError
from grl.experiments import Run
from grl.paths import project_root

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


PROCS_PER_RUN = "GRL_PROCS_PER_RUN"  # set by `reproduce --procs-per-run N` for the kernels it starts


def procs_per_run() -> int:
    value = os.environ.get(PROCS_PER_RUN, "1")
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(
            f"{PROCS_PER_RUN}={value!r}: expected a whole number >= 1 (processes per run, `reproduce --procs-per-run`)"
        )
    return int(value)


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
        "overrides": dict(run.overrides),
    }


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run name -> executed notebook / reason


class BatchInterrupted(KeyboardInterrupt):
    def __init__(self, run: Run | None = None, step: str = ""):
        super().__init__(run.name if run else step)
        self.run, self.step = run, step

    def message(self) -> str:
        where = f"run {self.run.name}" if self.run else (self.step or "the batch")
        return f"interrupted during {where}; nothing finished is lost — rerun the same command to resume" + (
            " it from its last checkpoint" if self.run else ""
        )
