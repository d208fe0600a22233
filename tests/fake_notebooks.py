"""Fake experiment notebooks for the batch tests: the real notebook's parameters, a body of the test's own."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

# Same parameters as notebooks/experiment.ipynb.
PARAMS = (
    'experiment: str = "grl"\nprofile: str = "quick"\ndataset: str = "mars"\ndata_root: str = ""\n'
    'seed: int = 0\nsplit: int = 0\noutput_dir: str = ""\nrecipe: str = ""\noverrides: dict = {}'
)


def write_fake_notebook(path: Path, body: str) -> Path:
    """A notebook with the parameters cell (tagged) and ``body``, for the python3 kernel, at ``path``."""
    nb = new_notebook(cells=[new_code_cell(PARAMS, metadata={"tags": ["parameters"]}), new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
