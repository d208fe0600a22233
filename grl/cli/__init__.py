"""Command line: ``python -m grl {reproduce, compare, list, calibrate, train, evaluate, extract, visrank, check-data,
synth, bench, refresh-notebooks}`` [--debug].

One module per command (grl/cli/<command>.py, dashes as underscores; ``list_`` for ``list``, whose module must not
shadow the builtin in this package), each owning its arguments
(``add_arguments``) and what it runs (``run``); ``synth`` and ``bench`` hand their arguments to their packages'
own parsers. An expected error is one line on stderr and an exit code below; ``--debug`` (anywhere on the line)
shows its traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from grl.config import ConfigError

COMMANDS = (
    "reproduce",
    "compare",
    "list",
    "calibrate",
    "train",
    "evaluate",
    "extract",
    "visrank",
    "check-data",
    "synth",
    "bench",
    "refresh-notebooks",
)

# Exit codes of an expected error (one line on stderr; the traceback with --debug): 1 the batch cannot go on,
# 2 bad input (configuration, data root or layout, a frame, a weights or model file), 3 the training diverged,
# 75 preempted (SIGTERM / SIGUSR1: a checkpoint of the current step was written; run the same command again -- 75
# is sysexits' EX_TEMPFAIL, "try again later"), 130 Ctrl-C.
EXIT_BATCH, EXIT_INPUT, EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_INTERRUPTED = 1, 2, 3, 75, 130


def command(name: str):
    """The module of command ``name``."""
    return importlib.import_module(f"grl.cli.{name.replace('-', '_')}{'_' if name == 'list' else ''}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m grl",
        description="The GRL study's command line: one command per job (python -m grl COMMAND --help).",
        epilog="--debug (anywhere on the line) shows an error's traceback.",
    )
    sub = top.add_subparsers(dest="command")
    for name in COMMANDS:
        module = command(name)
        if getattr(module, "OWNS_ARGUMENTS", True):
            module.add_arguments(sub.add_parser(name, help=module.HELP))
        else:
            sub.add_parser(name, help=module.HELP, add_help=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grl``: run one command; an expected error is one line on stderr and a non-zero exit."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    top = parser()
    if not argv:
        top.print_help()
        return 0
    from grl.batch.core import BatchInterrupted

    try:
        if argv[0] in COMMANDS and not getattr(command(argv[0]), "OWNS_ARGUMENTS", True):
            return command(argv[0]).run(argv[1:])
        args = top.parse_args(argv)
        return command(args.command).run(args)
    except BatchInterrupted as exc:  # Ctrl-C: one line, not 70 lines of kernel tracebacks
        _quiet_asyncio()
        print(f"\n{exc.message()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _quiet_asyncio()
        print("\ninterrupted; nothing finished is lost — rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = next((code for kind, code in _expected_errors() if isinstance(exc, kind)), None)
        if code is None or debug:
            raise
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank meets it: rank 0 says it once
            print(f"error: {_one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return code


def _expected_errors() -> tuple[tuple[type, int], ...]:
    from grl.batch.core import BatchError
    from grl.data.datasets import CorruptFrameError
    from grl.engine.guards import TrainingDiverged, TrainingPreempted
    from grl.engine.state import RunMismatchError

    return (
        (BatchError, EXIT_BATCH),
        (TrainingDiverged, EXIT_DIVERGED),
        (TrainingPreempted, EXIT_PREEMPTED),
        (ConfigError, EXIT_INPUT),
        (FileNotFoundError, EXIT_INPUT),  # DatasetNotFoundError, PretrainedWeightsError: they say what goes where
        (CorruptFrameError, EXIT_INPUT),
        (RunMismatchError, EXIT_INPUT),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _quiet_asyncio() -> None:
    """The interrupted kernel's client task ends with DeadKernelError, which asyncio logs with a traceback
    when the task is collected at exit ("exception was never retrieved"): noise after the one line."""
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
