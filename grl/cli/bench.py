"""``python -m grl bench``: the benchmarks (grl.bench owns the arguments)."""

from __future__ import annotations

HELP = "run the benchmarks (grl.bench)"
OWNS_ARGUMENTS = False  # everything after the command goes to grl.bench's own parser


def run(argv: list[str]) -> int:
    from grl.bench.__main__ import main

    try:
        return main(argv) or 0
    except SystemExit as exc:  # argparse's way out of --help or a bad argument
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
