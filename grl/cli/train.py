"""``python -m grl train``: one experiment trained (or loaded) in this process, its metrics printed."""

from __future__ import annotations

import argparse

from grl.catalogue import EXPERIMENTS
from grl.cli import options
from grl.config import DATASETS, parse_overrides
from grl.experiments import PROFILES

HELP = "train (or load) one experiment in-process and print its metrics"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", required=True, help=f"one of {', '.join(EXPERIMENTS)}")
    p.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)}")
    p.add_argument("--dataset", default="mars", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--split", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default="", help="the dataset's root (default: built-in synthetic data)")
    p.add_argument("--recipe", default=None, help=options.RECIPE_HELP)
    p.add_argument(
        "--run-dir", default="", help="the run's folder (default: the catalogue's, reports/PROFILE/runs/NAME)"
    )
    options.overrides(p)


def run(args: argparse.Namespace) -> int:
    from grl.batch.runs import run_or_load
    from grl.batch.shared import check_data
    from grl.engine import distributed
    from grl.experiments import make_run
    from grl.results import metrics_table

    one = make_run(
        args.experiment,
        args.dataset,
        args.profile,
        split=args.split,
        seed=args.seed,
        data_root=args.data_root,
        recipe=args.recipe,
        run_dir=args.run_dir or None,
        overrides=parse_overrides(args.set, args.config),
    )
    # Under torchrun every rank runs this; they train the run together and rank 0 alone speaks.
    with distributed.session(one.config.device):
        with distributed.main_first():
            check_data([one])
        if distributed.is_main():
            print(f"{one.name}: {one.run_dir}")
        result = run_or_load(one, progress=distributed.is_main())
        if distributed.is_main():
            print(metrics_table(result).to_markdown())
    return 0
