"""``python -m grl refresh-notebooks``: the committed notebooks re-executed in place (quick defaults), for nbval."""

from __future__ import annotations

import argparse

HELP = "re-execute the committed notebooks in place (quick defaults), for nbval"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="notebook file names (default: all in notebooks/)")
    p.add_argument(
        "--reuse-runs",
        action="store_true",
        help="use the existing reports/quick runs instead of computing into a fresh temporary folder",
    )


def run(args: argparse.Namespace) -> int:
    from grl import batch

    for path in batch.refresh_notebooks(args.names or None, fresh=not args.reuse_runs):
        print(f"refreshed {path}")
    return 0
