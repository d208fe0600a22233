"""``python -m grl calibrate``: the Baseline alone against the benchmark's calibration targets (the logic:
grl.batch.calibration). Exit 0 when every target is met, 1 otherwise."""

from __future__ import annotations

import argparse

from grl.cli import options
from grl.config import DATASETS
from grl.experiments import parse_seeds

HELP = "train the Baseline only and print it against the benchmark's calibration targets (docs/study.md)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.profile(p)
    p.add_argument("--seeds", default=None, metavar="0,1,2", help="default: the profile's")
    p.add_argument("--dataset", default=None, help=f"only this dataset: {', '.join(DATASETS)}")
    p.add_argument("--root", default=None, help="runs go here (default: reports/PROFILE, where the study reuses them)")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="runs at once (default: one per core)")


def run(args: argparse.Namespace) -> int:
    from grl.batch.calibration import calibrate

    met, text = calibrate(args.profile, parse_seeds(args.seeds), args.dataset, args.root, args.jobs)
    print(text)
    return 0 if met else 1
