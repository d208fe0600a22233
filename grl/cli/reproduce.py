"""``python -m grl reproduce``: the catalogue through papermill, then Figure 4 and the report."""

from __future__ import annotations

import argparse

from grl.cli import options
from grl.config import parse_overrides
from grl.experiments import parse_seeds

HELP = "run the catalogue through papermill, then Figure 4 and the report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.selection(p)
    options.overrides(p)
    p.add_argument("--root", default=None, help="write runs and report here instead of reports/PROFILE")
    p.add_argument(
        "--reference",
        default=None,
        metavar="RESULTS.csv",
        help="compare with this per-seed results table (default: the committed reports/PROFILE/results.csv)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="train N runs at once, the cores divided among them (default 1; `make study` uses one per "
        "core). A Ctrl-C with N > 1 stops the runs in flight by killing their kernels",
    )
    p.add_argument(
        "--procs-per-run",
        type=int,
        default=1,
        metavar="N",
        help="train each run on N processes together (torchrun, DistributedDataParallel; on a GPU machine "
        "N GPUs per job). Default 1",
    )
    p.add_argument(
        "--executor",
        default="local",
        help="local (default): the runs on this machine; slurm: each unfinished run as one SLURM job "
        "through submitit (the report is then built here)",
    )
    p.add_argument("--slurm-partition", default=None, metavar="P", help="SLURM partition (default: the cluster's)")
    p.add_argument(
        "--slurm-time",
        type=int,
        default=None,
        metavar="MINUTES",
        help="time limit of each job (default 720); a job out of time is requeued and resumes",
    )
    p.add_argument("--slurm-gpus-per-run", type=int, default=None, metavar="N", help="GPUs per job (default 1)")
    p.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra sbatch option, e.g. account=myproject or mem=64G (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from grl import batch
    from grl.batch import cluster

    slurm = cluster.slurm_options(
        args.executor, args.slurm_partition, args.slurm_time, args.slurm_gpus_per_run, args.slurm_option
    )
    return batch.reproduce(
        args.profile,
        args.only,
        args.dataset,
        batch.parse_data_roots(args.data_root),
        parse_seeds(args.seeds),
        root=args.root,
        reference=args.reference,
        recipe=args.recipe,
        jobs=1 if args.jobs is None else args.jobs,
        executor=args.executor,
        slurm=slurm,
        procs_per_run=args.procs_per_run,
        overrides=parse_overrides(args.set, args.config),
    )
