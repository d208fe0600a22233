"""The study's precision on made-up numbers: half-widths against the targets, the frontier, the projection, and
the variance components of grl.bench.variance on matrices whose parts are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from grl.bench.variance import bootstrap_sd, half_width, projected_sd, two_way_components
from grl.results import comparisons, precision


def frame(values):  # {(experiment, feature): [per-seed MARS mAP]} -> results frame
    return pd.DataFrame(
        [
            {
                "profile": "cpu",
                "data_version": "v1",
                "experiment": e,
                "dataset": "mars",
                "split": 0,
                "seed": s,
                "feature": f,
                "metric": "mAP",
                "value": v,
            }
            for (e, f), vs in values.items()
            for s, v in enumerate(vs)
        ]
    )


GRL = [50.0, 52.0, 49.0, 51.0]
OURS = frame(
    {
        ("grl", "h+l"): GRL,
        ("baseline", "g"): [g - d for g, d in zip(GRL, [3.0, 5.0, 4.0, 4.0])],
        ("grl-no-memory", "h+l"): [g + d for g, d in zip(GRL, [0.5, -0.5, 0.3, -0.3])],
    }
)


def test_half_widths_and_targets_by_hand():
    table = precision.precision_table(comparisons(OURS)).set_index("comparison")
    t3 = stats.t.ppf(0.975, 3)
    memory = t3 * np.std([0.5, -0.5, 0.3, -0.3], ddof=1) / 2  # 0.42: below both targets
    baseline = t3 * np.std([3.0, 5.0, 4.0, 4.0], ddof=1) / 2  # 1.30: above 1.0, below 1.5
    # Five comparisons: GRL vs Baseline in Table 2 and the Baseline rows of Tables 3-5 (1.30 each), - Memory (0.42)
    median = table.loc[table.index.str.endswith("median")].iloc[0]
    assert median.name.startswith("MARS-like mAP, Tables 3-6 and GRL vs Baseline (5)")
    assert float(median["half-width"]) == pytest.approx(baseline, abs=0.005) and memory < 1.0
    assert median.samples == 4 and median.met == "no"
    widest = table.loc["MARS-like mAP, the same, max"]
    assert float(widest["half-width"]) == pytest.approx(baseline, abs=0.005) and widest.met == "yes"


def test_frontier_recomputes_on_the_first_seeds_and_sums_their_minutes():
    wall = {(e, "mars", 0, s): 60.0 for e in ("grl", "baseline", "grl-no-memory") for s in range(4)}
    table = precision.frontier(OURS, wall, [0, 1, 2, 3], jobs=2)
    assert table.seeds.tolist() == [2, 3, 4]
    assert table["training minutes"].tolist() == [3.0, 4.5, 6.0]  # 3 runs x k seeds x 1 min / 2 jobs
    two = stats.t.ppf(0.975, 1) * np.std([3.0, 5.0], ddof=1) / math.sqrt(2)
    assert table["MARS-like max half-width"].iloc[0] == pytest.approx(two, abs=0.01)


def test_seeds_for_target_is_the_smallest_n():
    n = precision.seeds_for_target(2.0, 1.0)
    assert stats.t.ppf(0.975, n - 1) * 2.0 / math.sqrt(n) <= 1.0 < stats.t.ppf(0.975, n - 2) * 2.0 / math.sqrt(n - 1)
    assert "--seeds 0-" in precision.projection(comparisons(OURS), 10.0, 1.0)


def test_two_way_components_recover_known_parts():
    rng = np.random.default_rng(0)
    S, Q = 40, 400
    d = 2.0 + rng.normal(0, 1.5, (S, 1)) + rng.normal(0, 20.0, (1, Q)) + rng.normal(0, 10.0, (S, Q))
    comp = two_way_components(d)
    assert comp["sd_training"] == pytest.approx(1.5, rel=0.25)
    assert comp["sd_per_query"] == pytest.approx(10.0, rel=0.05)
    assert comp["sd_measured"] == pytest.approx(math.sqrt(1.5**2 + 10.0**2 / Q), rel=0.25)
    assert projected_sd(comp, 10**9) == pytest.approx(comp["sd_training"])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        two_way_components(d[:1])


def test_bootstrap_resamples_identities_not_queries():
    values = np.array([100.0, 100.0, 0.0, 0.0])  # two identities with two queries each
    groups = np.array([1, 1, 2, 2])
    sd = bootstrap_sd(values, groups, draws=20000)
    assert sd == pytest.approx(50 / math.sqrt(2), rel=0.05)  # mean of 2 identity means of 100 or 0
    assert half_width(1.0, 1) != half_width(1.0, 1)
