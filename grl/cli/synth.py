"""``python -m grl synth``: the built-in synthetic datasets generated (grl.data.synthetic owns the arguments)."""

from __future__ import annotations

HELP = "generate the built-in synthetic datasets (grl.data.synthetic)"
OWNS_ARGUMENTS = False  # everything after the command goes to grl.data.synthetic's own parser


def run(argv: list[str]) -> int:
    from grl.data.synthetic.cli import main

    return main(argv) or 0
