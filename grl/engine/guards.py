"""What stops a training early, and how: preemption signals (a checkpoint of the current step, then stop) and the
divergence guard (a loss term non-finite or exploding: stop within one step, no result)."""

from __future__ import annotations

import contextlib
import signal
import threading

from grl.utils import note_preemption


class TrainingDiverged(FloatingPointError):
    """A loss term became non-finite or exceeded ``config.divergence_factor`` times its first-epoch value.
    Raised within one step; the run writes no result (its last epoch checkpoint stays)."""


class TrainingPreempted(RuntimeError):
    """SIGTERM, SIGUSR1 or SIGUSR2 arrived while training: a checkpoint of the current step was written (atomically) and
    training stopped; running the same run again resumes from that step. ``python -m grl`` exits with 75."""


class StopAtStep(Exception):
    """train_one_epoch's way out after a preemption signal; ``partial`` is the epoch so far (plain data)."""

    def __init__(self, signal_name: str, partial: dict):
        super().__init__(signal_name)
        self.signal_name, self.partial = signal_name, partial


# What a scheduler sends before it stops a job: SLURM sends SIGTERM at preemption and at the time limit (and, with
# --signal, the signal named there a set time before: SIGUSR1 by custom, SIGUSR2 for submitit's requeueing); kill's
# default is SIGTERM too.
PREEMPTION_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


@contextlib.contextmanager
def preemption_watch():
    """Yields a function that returns the name of the first preemption signal received so far (or None).

    Python lets only the main thread set signal handlers; elsewhere nothing is watched. The previous handlers
    come back when the block ends, so a finished training leaves SIGTERM as it found it."""
    received: list[str] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def handler(signum, frame):
            received.append(signal.Signals(signum).name)
            note_preemption()

        for name in PREEMPTION_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, handler)
    try:
        yield lambda: received[0] if received else None
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def divergence_check(terms: dict[str, float], reference: dict[str, float], factor: float) -> list[str]:
    """The loss terms that diverged: non-finite, or above ``factor`` × max(|reference|, 1) (a term's reference is
    its first-epoch mean; the floor of 1 keeps a term that starts near 0 from tripping on ordinary noise)."""
    bad = []
    for name, value in terms.items():
        if value != value or value in (float("inf"), float("-inf")):
            bad.append(f"{name}={value}")
        elif factor > 0 and name in reference and abs(value) > factor * max(abs(reference[name]), 1.0):
            bad.append(f"{name}={value:.4g} (first epoch: {reference[name]:.4g}, limit x{factor:g})")
    return bad


def first_epoch_terms(history: list[dict]) -> dict[str, float] | None:
    """Each loss term's mean over the first epoch, from its record (None before the first epoch ends): the
    divergence guard's reference."""
    if not history:
        return None
    first = history[0]
    return {"total": first["loss"], **{k[5:]: v for k, v in first.items() if k.startswith("loss_")}}
