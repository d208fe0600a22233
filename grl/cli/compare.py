"""``python -m grl compare``: did a study reproduce the reference? Exit 0 when the two are comparable (whatever
the agreement), 1 when they are not or there is nothing to compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from grl.cli import options
from grl.config import ConfigError

HELP = "did a study reproduce the reference? (per-seed results tables)"
SHOWN = ["experiment", "dataset", "feature", "metric", "mean", "low", "high", "mean_ref", "low_ref", "high_ref"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.profile(p)
    p.add_argument("--root", default=None, help="the study's folder (default: reports/PROFILE)")
    p.add_argument(
        "--reference",
        default=None,
        metavar="RESULTS.csv",
        help="the reference table (default: reports/PROFILE/results.csv as committed)",
    )


def run(args: argparse.Namespace) -> int:
    from grl import results as report
    from grl.experiments import get_profile, profile_dir

    get_profile(args.profile)
    path = profile_dir(args.profile, args.root) / "results.csv"
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist: run `python -m grl reproduce --profile {args.profile}"
            f"{' --root ' + str(args.root) if args.root else ''}` first (it writes results.csv)"
        )
    try:
        ours = report.read_results_csv(path)
        if args.reference:
            if not Path(args.reference).is_file():
                raise ConfigError(f"--reference {args.reference}: no such file (expected a results.csv)")
            reference, label = report.read_results_csv(args.reference), args.reference
        else:
            reference, label = report.committed_reference(args.profile)
    except ValueError as exc:  # a table that is not ours: its path and what was expected
        raise ConfigError(str(exc)) from None
    if reference is None:
        print(label)
        return 1
    comparable, summary, cells = report.compare_with_reference(ours, reference)
    print(f"this study: {path}\nreference:  {label}\n{summary}")
    if comparable:
        outside = cells[~(cells.ours_in_ref & cells.ref_in_ours)]
        if len(outside):
            print("cells where a mean lies outside the other's interval:")
            print(outside[SHOWN].round(2).to_string(index=False))
    return 0 if comparable else 1
