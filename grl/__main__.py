"""``python -m grl``: the command line of grl.cli."""

from __future__ import annotations

import sys

from grl.cli import EXIT_BATCH, EXIT_DIVERGED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_PREEMPTED, main

__all__ = ["EXIT_BATCH", "EXIT_DIVERGED", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_PREEMPTED", "main"]

if __name__ == "__main__":
    sys.exit(main())
