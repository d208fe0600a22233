"""``python -m grl compare``: did a study reproduce the reference? Exit 0 when the two are comparable (whatever
the agreement), 1 when they are not or there is nothing to compare. ``--json`` prints one JSON object instead of
the table: ``cells``, ``cells_difference_within_interval``, ``verdicts``, ``verdicts_equal_after_holm``,
``opposite``, ``headline_same`` (and ``comparable``, ``reference``, ``study``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from grl.cli import options
from grl.config import ConfigError

HELP = "did a study reproduce the reference? (per-seed results tables)"
SHOWN = [
    "experiment",
    "dataset",
    "feature",
    "metric",
    "mean",
    "mean_ref",
    "difference",
    "difference_low",
    "difference_high",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.profile(p)
    p.add_argument("--root", default=None, help="the study's folder (default: reports/PROFILE)")
    p.add_argument(
        "--reference",
        default=None,
        metavar="RESULTS.csv",
        help="the reference table (default: reports/PROFILE/results.csv as committed)",
    )
    p.add_argument("--json", action="store_true", help="print the criteria's numbers as one JSON object")


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
        print(json.dumps({"comparable": False, "reason": label}) if args.json else label)
        return 1
    comparable, summary, cells = report.compare_with_reference(ours, reference)
    if args.json:
        print(json.dumps(criteria(comparable, summary, cells, str(path), label)))
        return 0 if comparable else 1
    print(f"this study: {path}\nreference:  {label}\n{summary}")
    if comparable:
        outside = cells[~cells.difference_within_interval]
        if len(outside):
            print("cells whose difference of means lies outside its Welch 95 % interval of 0:")
            print(outside[SHOWN].round(2).to_string(index=False))
    return 0 if comparable else 1


def criteria(comparable: bool, summary: str, cells, study: str, reference: str) -> dict:
    """The reproduction criteria's numbers (docs/study.md) as plain data; the reason when not comparable."""
    if not comparable:
        return {"comparable": False, "reason": summary, "study": study, "reference": reference}
    numbers = cells.attrs["numbers"]
    return {
        "comparable": True,
        "study": study,
        "reference": reference,
        "cells": numbers["cells"],
        "cells_difference_within_interval": numbers["cells_difference_within_interval"],
        "verdicts": numbers["verdicts"],
        "verdicts_equal_after_holm": numbers["matching_holm"],
        "opposite": numbers["opposite"],
        "headline_same": numbers["headline"][0] == numbers["headline"][1],
    }
