"""The run-time breakdown benchmark (grl.bench.run): structure only, never timings."""
import math

from grl.bench.__main__ import SECTIONS
from grl.bench.run import PARTS, breakdown, format_breakdown


def test_breakdown_parts_are_positive_and_sum_to_the_total():
    result = breakdown("quick", "grl", "mars", reps=1, jobs=2)
    assert list(result["parts"]) == list(PARTS)
    assert all(p["seconds"] > 0 and p["how"] for p in result["parts"].values())
    assert math.isclose(result["total_s"], sum(p["seconds"] for p in result["parts"].values()))
    assert result["runs"] > 0 and result["jobs"] == 2 and result["threads"] == 1  # the quick profile pins 1 thread
    assert math.isclose(result["study_s"], result["runs"] * result["total_s"] / 2)
    table = format_breakdown(result)
    assert all(f"| {name} |" in table for name in PARTS) and "| total |" in table


def test_run_is_a_bench_section():
    assert "run" in SECTIONS
