"""grl.stats on hand-made numbers: t-intervals, paired differences, verdicts, degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from grl.stats import Interval, paired_difference, t_interval, verdict

# Two-sided 95 % Student-t quantiles t_{0.975, df}, from a printed table (not from scipy).
T975 = {1: 12.706204736, 2: 4.302652730, 4: 2.776445105}


def test_t_interval_of_one_to_five_matches_the_textbook():
    iv = t_interval([1, 2, 3, 4, 5])
    half = T975[4] * math.sqrt(2.5) / math.sqrt(5)  # s = sqrt(2.5), sem = s / sqrt(n)
    assert (iv.mean, iv.n) == (3.0, 5)
    assert iv.low == pytest.approx(3 - half, abs=1e-9) and iv.high == pytest.approx(3 + half, abs=1e-9)
    assert iv.text(2) == f"3.00 ± {half:.2f}"
    assert iv.contains(1.1) and not iv.contains(1.0)


def test_two_samples_give_a_wide_interval():
    iv = t_interval([10.0, 12.0])  # s = sqrt(2), sem = 1
    assert iv.low == pytest.approx(11 - T975[1]) and iv.high == pytest.approx(11 + T975[1])


def test_zero_variance_one_sample_and_none():
    iv = t_interval([5.0, 5.0, 5.0])
    assert (iv.mean, iv.low, iv.high) == (5.0, 5.0, 5.0) and iv.contains(5.0) and iv.excludes_zero()
    one = t_interval([7.0])
    assert one.mean == 7.0 and math.isnan(one.low) and not one.contains(7.0) and not one.excludes_zero()
    assert one.text() == "7.0"
    none = t_interval([])
    assert none.n == 0 and math.isnan(none.mean) and none.text() == "—"


def test_paired_difference_pairs_by_seed_and_split():
    # Seed effects are large (10, 20, 30) but the row is consistently 2 +- 0.1 above its reference:
    # paired, the difference is clear; the unpaired means' intervals would overlap entirely.
    reference = {(0, 0): 10.0, (1, 0): 20.0, (2, 0): 30.0}
    row = {(0, 0): 12.1, (1, 0): 22.0, (2, 0): 31.9, (3, 0): 99.0}  # seed 3 has no partner: ignored
    diff = paired_difference(row, reference)
    half = T975[2] * 0.1 / math.sqrt(3)  # differences 2.1, 2.0, 1.9: s = 0.1
    assert diff.n == 3 and diff.mean == pytest.approx(2.0)
    assert diff.low == pytest.approx(2.0 - half) and diff.high == pytest.approx(2.0 + half)
    assert verdict(diff, paper_difference=+1.5) == "agrees"
    assert verdict(diff, paper_difference=-0.4) == "contradicts"
    assert verdict(diff, paper_difference=0.0) == "contradicts"  # the paper shows no effect, we find one
    unpaired = t_interval(row[k] for k in reference)
    assert unpaired.contains(t_interval(reference.values()).mean)


def test_verdict_is_inconclusive_when_the_interval_contains_zero():
    diff = paired_difference({(0, 0): 1.0, (1, 0): 2.0, (2, 0): 3.0}, {(0, 0): 0.0, (1, 0): 0.0, (2, 0): 0.0})
    # differences 1, 2, 3: mean 2, s = 1 -> 2 +- 4.30 / sqrt(3) = [-0.48, 4.48]
    assert diff.low == pytest.approx(2 - T975[2] / math.sqrt(3)) and diff.low < 0
    assert verdict(diff, 5.0) == "inconclusive"
    same = paired_difference({(0, 0): 4.0, (1, 0): 5.0}, {(0, 0): 4.0, (1, 0): 5.0})  # zero variance at 0
    assert (same.low, same.high) == (0.0, 0.0) and verdict(same, 1.0) == "inconclusive"
    constant = paired_difference({(0, 0): 5.0, (1, 0): 6.0}, {(0, 0): 4.0, (1, 0): 5.0})  # always +1
    assert verdict(constant, 1.0) == "agrees" and verdict(constant, -1.0) == "contradicts"
    single = paired_difference({(0, 0): 9.0}, {(0, 0): 1.0})
    assert verdict(single, 1.0) == "inconclusive"  # one sample: no interval, no conclusion
    assert Interval(1.0, float("nan"), float("nan"), 1).excludes_zero() is False


def test_holm_adjusts_step_down_and_keeps_order():
    from grl.stats import holm

    # m = 4: sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5; NaN is not counted.
    adjusted = holm([0.03, 0.01, float("nan"), 0.5, 0.02])
    assert adjusted[1] == pytest.approx(0.04) and adjusted[4] == pytest.approx(0.06)
    assert adjusted[0] == pytest.approx(0.06) and adjusted[3] == 0.5 and math.isnan(adjusted[2])
    assert holm([0.4, 0.3]) == [0.6, 0.6] and holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1, then monotone


def test_paired_test_p_value_and_minimum_detectable_effect_by_hand():
    from scipy import stats

    from grl.stats import minimum_detectable_effect, paired_test, within_margin

    row, ref = {(0, 0): 12.0, (1, 0): 15.0, (2, 0): 11.0}, {(0, 0): 10.0, (1, 0): 11.0, (2, 0): 10.0}
    test = paired_test(row, ref)  # differences 2, 4, 1: mean 7/3, sd 1.5275
    sd = float(np.std([2, 4, 1], ddof=1))
    assert test.sd == pytest.approx(sd)
    assert test.p_value == pytest.approx(2 * stats.t.sf((7 / 3) / (sd / math.sqrt(3)), 2))
    assert test.mde == pytest.approx((stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * sd / math.sqrt(3))
    assert minimum_detectable_effect(1.0, 1) != minimum_detectable_effect(1.0, 1)  # NaN below two samples
    # The MDE falls as 1/sqrt(n) at large n (t quantiles settle): 100 vs 400 samples, about half.
    assert minimum_detectable_effect(1.0, 400) / minimum_detectable_effect(1.0, 100) == pytest.approx(0.5, abs=0.01)
    assert within_margin(test.interval, 10.0) and not within_margin(test.interval, 2.0)


def test_adjusted_verdict_needs_the_adjusted_p_value():
    from grl.stats import Interval, adjusted_verdict

    above = Interval(2.0, 1.0, 3.0, 3)
    assert adjusted_verdict(above, 1.5, 0.01) == "agrees"
    assert adjusted_verdict(above, -1.5, 0.01) == "contradicts"
    assert adjusted_verdict(above, 1.5, 0.2) == "inconclusive"
    assert adjusted_verdict(above, 1.5, float("nan")) == "inconclusive"


def test_welch_interval_of_two_studies_means():
    from grl.stats import welch_interval

    a, b = [20.0, 22.0, 24.0, 27.0], [19.0, 20.0, 21.0]
    iv = welch_interval(a, b)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3  # 8.9167 / 4 and 1 / 3
    dof = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, dof) * np.sqrt(va + vb)
    assert iv.mean == pytest.approx(23.25 - 20.0) and iv.half_width == pytest.approx(half)
    reference = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (iv.low, iv.high) == pytest.approx((reference.low, reference.high))
    assert iv.contains(0.0) == (iv.low <= 0 <= iv.high)  # the criterion reads whether 0 is inside
    assert np.isnan(welch_interval([1.0], [1.0, 2.0]).low)  # one study with a single sample: no interval
    assert welch_interval([3.0, 3.0], [1.0, 1.0]).low == 2.0  # no spread on either side: a point
