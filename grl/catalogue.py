"""The catalogue: every row of the paper's Tables 1-6 (and ours) as a named experiment on a dataset, tested with
a named feature.

* ``EXPERIMENTS`` -- named switches on the one GRL model (Config overrides);
* ``CATALOGUE``   -- (table, row label, experiment, dataset, test feature) for every table row.

How big each run is (the profiles) and the runs themselves are grl.experiments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grl.config import DATASETS, ConfigError

# ---------------------------------------------------------------------------------------
# Experiments: switches on one model (paper §4.4). Applied after the profile's overrides.
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "baseline": {"use_gce": False, "use_trl": False, "oim": "v", "use_verification": False},
    "gce": {"use_trl": False},
    "grl": {},
    "grl-no-memory": {"use_memory": False},
    "grl-no-enhancement": {"use_enhancement": False},
    "grl-T4": {"seq_len": 4},
    "grl-T6": {"seq_len": 6},
    "grl-T10": {"seq_len": 10},
    "grl-forward": {"direction": "forward"},
    "grl-backward": {"direction": "backward"},
    "grl-v-oim": {"oim": "v"},
    "grl-f-oim": {"oim": "f"},
    # Not in the paper: the CPU profiles' pretrained backbone switched off (Table 7, ours).
    "baseline-scratch": {
        "use_gce": False,
        "use_trl": False,
        "oim": "v",
        "use_verification": False,
        "pretrained": False,
    },
    "grl-scratch": {"pretrained": False},
}


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogueRow:
    """One row of one paper table on one dataset: which trained model, tested with which feature."""

    table: int
    row: str
    experiment: str
    dataset: str
    feature: str  # "g" | "l" | "h" | "h+l"


def _catalogue() -> tuple[CatalogueRow, ...]:
    rows: list[CatalogueRow] = []
    add = lambda table, row, exp, ds, feat="h+l": rows.append(CatalogueRow(table, row, exp, ds, feat))  # noqa: E731
    for ds in DATASETS:
        add(1, "GRL (ours)", "grl", ds)
    for ds in DATASETS:  # not in the paper: ours only (the paper reports no re-ranking)
        add(1, "GRL + re-ranking", "grl", ds, "h+l+rerank")
    for ds in DATASETS:
        add(2, "Baseline (F^g)", "baseline", ds, "g")
        for prefix, exp in (("+GCE", "gce"), ("+TRL", "grl")):
            add(2, f"{prefix} (F^l)", exp, ds, "l")
            add(2, f"{prefix} (F^h)", exp, ds, "h")
            add(2, f"{prefix} (F^l+F^h)", exp, ds, "h+l")
    add(3, "Baseline", "baseline", "mars", "g")
    add(3, "GRL", "grl", "mars")
    add(3, "- Memory Block", "grl-no-memory", "mars")
    add(3, "- Enhancement Block", "grl-no-enhancement", "mars")
    add(4, "Baseline (T=8)", "baseline", "mars", "g")
    for t, exp in ((4, "grl-T4"), (6, "grl-T6"), (8, "grl"), (10, "grl-T10")):
        add(4, f"GRL (T={t})", exp, "mars")
    add(5, "Baseline", "baseline", "mars", "g")
    add(5, "GRL forward", "grl-forward", "mars")
    add(5, "GRL backward", "grl-backward", "mars")
    add(5, "GRL bi-direction", "grl", "mars")
    add(6, "GRL V-OIM", "grl-v-oim", "mars")
    add(6, "GRL F-OIM", "grl-f-oim", "mars")
    add(6, "GRL V&F-OIM", "grl", "mars")
    add(7, "Baseline, pretrained backbone", "baseline", "mars", "g")
    add(7, "Baseline, from scratch", "baseline-scratch", "mars", "g")
    add(7, "GRL, pretrained backbone", "grl", "mars")
    add(7, "GRL, from scratch", "grl-scratch", "mars")
    return tuple(rows)


CATALOGUE: tuple[CatalogueRow, ...] = _catalogue()
TABLES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)  # the paper's
OUR_TABLES: tuple[int, ...] = (7,)  # not in the paper
TABLE_TITLES = {
    1: "Table 1. Comparison with the state of the art (GRL rows)",
    2: "Table 2. Key components (test feature per row)",
    3: "Table 3. EMU ablation on MARS",
    4: "Table 4. Sequence length T on MARS",
    5: "Table 5. Temporal direction on MARS",
    6: "Table 6. Multi-level OIM losses on MARS",
    7: "Table 7 (ours, not in the paper). The pretrained backbone on MARS: with and without it",
}


def check_name(name: str, valid, kind: str) -> None:
    if name not in valid:
        raise ConfigError(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(valid)}")


def selection_names() -> list[str]:
    return [f"table{t}" for t in TABLES + OUR_TABLES] + list(EXPERIMENTS) + list(DATASETS)


def select_rows(only: str | None = None, dataset: str | None = None) -> list[CatalogueRow]:
    """Catalogue rows matching ``only`` ("table4", "table1,table3", an experiment or dataset name)."""
    rows = list(CATALOGUE)
    if dataset:
        check_name(dataset, DATASETS, "dataset")
        rows = [r for r in rows if r.dataset == dataset]
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        valid = selection_names()
        for w in wanted:
            if w not in valid:
                raise ConfigError(f"unknown selection {w!r} in --only; valid names: {', '.join(valid)}")
        rows = [r for r in rows if f"table{r.table}" in wanted or r.experiment in wanted or r.dataset in wanted]
    return rows
