"""The batch: the catalogue's runs executed as notebooks through papermill, then Figure 4 and the report.

One job per module, imported in one direction (tests/test_architecture.py keeps it so):

- :mod:`~grl.batch.core` — what "done" means, a run's parameters, the batch's outcome and errors;
- :mod:`~grl.batch.notebook` — executing one notebook (parameters checked, atomic output, reused kernels);
- :mod:`~grl.batch.shared` — what the runs share (data, pretrained backbone, frame caches), made once;
- :mod:`~grl.batch.locks` — one batch per folder, space and permission checks;
- :mod:`~grl.batch.runs` — runs trained in this process (the notebooks' calls; torchrun);
- :mod:`~grl.batch.local` — the local executor (``--jobs N``);
- :mod:`~grl.batch.cluster` — the SLURM executor (submitit), built on the core, never the reverse;
- :mod:`~grl.batch.study` — ``python -m grl reproduce``: plan, run, report;
- :mod:`~grl.batch.calibration` — ``python -m grl calibrate``: the Baseline against the calibration targets.

The names below are the batch's public API (``from grl import batch; batch.reproduce(...)``).
"""

from grl.batch.core import BatchError, BatchInterrupted, BatchResult, ParameterError, notebooks_dir
from grl.batch.local import check_jobs, default_jobs, run_batch
from grl.batch.locks import batch_lock
from grl.batch.notebook import execute, refresh_notebooks, refuse_undeclared_parameters
from grl.batch.runs import ensure_run, ensure_runs, run_or_load
from grl.batch.shared import check_data, prepare_shared
from grl.batch.study import parse_data_roots, reproduce

__all__ = [
    "BatchError",
    "BatchInterrupted",
    "BatchResult",
    "ParameterError",
    "batch_lock",
    "check_data",
    "check_jobs",
    "default_jobs",
    "ensure_run",
    "ensure_runs",
    "execute",
    "notebooks_dir",
    "parse_data_roots",
    "prepare_shared",
    "refresh_notebooks",
    "refuse_undeclared_parameters",
    "reproduce",
    "run_batch",
    "run_or_load",
]
