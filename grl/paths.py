"""Where the project keeps generated data and reports."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path | None:
    """The source checkout holding this package, or None when installed elsewhere."""
    candidate = Path(__file__).resolve().parents[1]
    return candidate if (candidate / "pyproject.toml").is_file() else None


def data_dir() -> Path:
    """Root for generated datasets: $GRL_DATA_DIR, else <checkout>/data, else ~/.cache/grl/data."""
    if os.environ.get("GRL_DATA_DIR"):
        return Path(os.environ["GRL_DATA_DIR"]).expanduser()
    root = project_root()
    return root / "data" if root else Path.home() / ".cache" / "grl" / "data"


def reports_dir() -> Path:
    """Root for reports: $GRL_REPORTS_DIR, else <checkout>/reports, else ./reports."""
    if os.environ.get("GRL_REPORTS_DIR"):
        return Path(os.environ["GRL_REPORTS_DIR"]).expanduser()
    root = project_root()
    return root / "reports" if root else Path.cwd() / "reports"
