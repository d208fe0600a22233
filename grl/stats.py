"""Statistics of a seeded study: means with confidence intervals, paired differences, verdicts.

A *sample* is one trained model: one (seed, split) of a run. A table cell is the mean over its
samples with a Student-t interval; a comparison of two rows (an ablation against its reference
row) is the mean of the *paired* per-sample differences -- the same seed and split on both
sides, so the seed's share of the noise cancels -- with its Student-t interval. A verdict is
drawn only where that interval allows it:

* ``agrees``       -- the interval excludes 0 and has the sign of the paper's difference;
* ``contradicts``  -- it excludes 0 with the opposite sign (or the paper shows no difference);
* ``inconclusive`` -- it contains 0, or there are fewer than two samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

CONFIDENCE = 0.95
VERDICTS = ("agrees", "contradicts", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` samples with its two-sided confidence interval [low, high] (NaN when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        """False when the interval is undefined (n < 2)."""
        return not math.isnan(self.low) and self.low <= value <= self.high

    def excludes_zero(self) -> bool:
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)

    def text(self, decimals: int = 1) -> str:
        """ "12.3 ± 1.4" (or "12.3" alone for a single sample)."""
        if math.isnan(self.mean):
            return "—"
        if math.isnan(self.low):
            return f"{self.mean:.{decimals}f}"
        return f"{self.mean:.{decimals}f} ± {self.half_width:.{decimals}f}"


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """Student-t interval of the mean: mean ± t_{(1+c)/2, n-1} · s / √n.

    Zero variance gives a zero-width interval at the mean; one sample gives NaN bounds
    (its spread is unknown); no sample gives NaN everywhere.
    """
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return Interval(mean, mean, mean, n)
    low, high = _scipy_stats().t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n)


def paired_difference(row: Mapping, reference: Mapping, confidence: float = CONFIDENCE) -> Interval:
    """Interval of mean(row[k] − reference[k]) over the sample keys k (seed, split) both sides have."""
    common = sorted(set(row) & set(reference))
    return t_interval([row[k] - reference[k] for k in common], confidence)


def welch_interval(a: Iterable[float], b: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """Interval of mean(a) − mean(b) for two independent samples (two studies of one cell): Welch's
    mean difference ± t_{(1+c)/2, ν} · √(s_a²/n_a + s_b²/n_b), ν by Welch–Satterthwaite. NaN bounds when either side
    has fewer than two values; a zero-width interval when both have no spread."""
    x, y = (np.asarray([float(v) for v in s], dtype=np.float64) for s in (a, b))
    if x.size == 0 or y.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    diff, n = float(x.mean() - y.mean()), int(min(x.size, y.size))
    if x.size < 2 or y.size < 2:
        return Interval(diff, math.nan, math.nan, n)
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Interval(diff, diff, diff, n)
    dof = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = float(_scipy_stats().t.ppf((1 + confidence) / 2, dof)) * se
    return Interval(diff, diff - half, diff + half, n)


def verdict(difference: Interval, paper_difference: float) -> str:
    """Does our paired difference (an :class:`Interval`) go the way the paper's difference does?"""
    if not difference.excludes_zero():
        return "inconclusive"
    ours_sign = 1 if difference.low > 0 else -1
    paper_sign = (paper_difference > 0) - (paper_difference < 0)
    return "agrees" if ours_sign == paper_sign else "contradicts"


def _scipy_stats():
    # Imported on first use: scipy.stats costs ~0.7 s to import, paid by every experiment notebook otherwise.
    from scipy import stats

    return stats


# ---------------------------------------------------------------------------------------------------------
# What a comparison could have seen, and many comparisons at once.
POWER = 0.80


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison: the interval of the mean difference, the SD of the differences, the two-sided
    p-value of "mean difference = 0" (Student t) and the minimum detectable effect at :data:`POWER`."""

    interval: Interval
    sd: float
    p_value: float
    mde: float


def minimum_detectable_effect(sd: float, n: int, confidence: float = CONFIDENCE, power: float = POWER) -> float:
    """Smallest true mean difference a two-sided paired t-test at ``confidence`` detects with ``power``:
    (t_{1-α/2, n-1} + t_{power, n-1}) · sd / √n. NaN below two samples."""
    if n < 2 or math.isnan(sd):
        return math.nan
    t = _scipy_stats().t
    return float((t.ppf((1 + confidence) / 2, n - 1) + t.ppf(power, n - 1)) * sd / math.sqrt(n))


def paired_test(row: Mapping, reference: Mapping, confidence: float = CONFIDENCE) -> PairedTest:
    """:func:`paired_difference` with the SD, p-value and minimum detectable effect of the differences."""
    common = sorted(set(row) & set(reference))
    d = np.asarray([row[k] - reference[k] for k in common], dtype=np.float64)
    interval = t_interval(d, confidence)
    if d.size < 2:
        return PairedTest(interval, math.nan, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        p = 1.0 if d.mean() == 0 else 0.0
    else:
        p = float(2 * _scipy_stats().t.sf(abs(d.mean()) / (sd / math.sqrt(d.size)), d.size - 1))
    return PairedTest(interval, sd, p, minimum_detectable_effect(sd, int(d.size), confidence))


def holm(p_values: Iterable[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over all of them); NaN stays NaN and is not counted.

    Sorted ascending, p_(i) is multiplied by (m − i + 1), made monotone, capped at 1."""
    p = [float(v) for v in p_values]
    finite = sorted((v, i) for i, v in enumerate(p) if not math.isnan(v))
    m = len(finite)
    adjusted = [math.nan] * len(p)
    running = 0.0
    for rank, (value, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * value))
        adjusted[i] = running
    return adjusted


def adjusted_verdict(
    difference: Interval, paper_difference: float, p_adjusted: float, alpha: float = 1 - CONFIDENCE
) -> str:
    """:func:`verdict` after a multiplicity adjustment: a direction only where the adjusted p-value < alpha."""
    if math.isnan(p_adjusted) or p_adjusted >= alpha:
        return "inconclusive"
    return verdict(difference, paper_difference) if difference.excludes_zero() else "inconclusive"


def within_margin(difference: Interval, margin: float) -> bool:
    """ "No effect larger than ``margin``": the whole interval lies inside (−margin, +margin)."""
    return not math.isnan(difference.low) and -margin < difference.low and difference.high < margin


def sequential_coverage(
    sd: float, target: float, start: int, cap: int, repeats: int = 20_000, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Simulated (coverage, mean samples) of the adaptive-seeds rule (docs/study.md, "Adaptive seeds") for one
    comparison whose paired differences are normal with standard deviation ``sd``: ``start`` samples, then one more
    while the t half-width exceeds ``target`` and fewer than ``cap`` were drawn. Stopping on a small sample SD makes
    the final interval cover the true difference a little less often than ``confidence``."""
    t = _scipy_stats().t
    x = np.random.default_rng(seed).normal(0.0, sd, size=(repeats, cap))
    n = np.arange(1, cap + 1)
    count = np.maximum(n - 1, 1)  # n = 1 has no SD; it is never a stopping point (start >= 2)
    mean = np.cumsum(x, axis=1) / n  # (repeats, cap): the mean and SD after the first n samples
    sd_n = np.sqrt(np.maximum(np.cumsum(x * x, axis=1) - n * mean**2, 0.0) / count)
    half = t.ppf((1 + confidence) / 2, count) * sd_n / np.sqrt(n)
    stop = (half <= target) & (n >= start)
    stop[:, -1] = True  # the cap
    last = stop.argmax(axis=1)  # the first sample count at which the rule stops
    rows = np.arange(repeats)
    covered = np.abs(mean[rows, last]) <= half[rows, last]
    return float(covered.mean()), float((last + 1).mean())
