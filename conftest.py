"""Shared pytest set-up, including how nbval compares notebook outputs.

With ``--nbval-lax`` only cells marked ``# NBVAL_CHECK_OUTPUT`` are compared (the metric
tables); the hook below keeps nbval from comparing output kinds that are not regression
checks even there: stderr (tqdm bars, warnings), HTML/JS renderings and images -- the
numbers the images are drawn from are checked instead.
"""
from __future__ import annotations

import pytest

SKIP_COMPARE = ("stderr", "text/html", "application/javascript", "image/png")


def pytest_collectstart(collector):
    if str(getattr(collector, "fspath", "")).endswith(".ipynb") and hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            kind for kind in SKIP_COMPARE if kind not in collector.skip_compare
        )


@pytest.fixture
def seeded_one_thread():
    """Seeded, and one thread: on a shared 2-core machine OpenMP spinning makes tiny ops 20x slower.

    The model and loss tests use it (`pytestmark = pytest.mark.usefixtures("seeded_one_thread")`)."""
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
