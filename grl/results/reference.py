"""This study against a reference study (a committed results.csv): cell by cell and verdict by verdict."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pandas as pd

from grl.provenance import git_commit
from grl.results.comparisons import comparisons, headline_verdicts
from grl.results.frame import CELL, cell_samples, cell_statistics, read_results_csv
from grl.stats import Interval, welch_interval


def committed_reference(profile: str) -> tuple[pd.DataFrame | None, str]:
    """The reference results of a profile: ``reports/<profile>/results.csv`` as committed at HEAD
    (so a study rebuilt in the same folder still compares with what was committed), else the file
    on disk; (None, why) when there is none."""
    from grl.paths import project_root

    root = project_root()
    rel = f"reports/{profile}/results.csv"
    if root is None:
        return None, f"no reference table: not a source checkout, so {rel} is not here"
    try:
        out = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            return read_results_csv(io.StringIO(out.stdout)), f"`{rel}` as committed at {git_commit(short=True)}"
    except (OSError, subprocess.SubprocessError):
        pass
    if (root / rel).is_file():
        return read_results_csv(root / rel), f"`{root / rel}`"
    return None, f"no reference table: {rel} is neither committed nor on disk"


def compare_with_reference(ours: pd.DataFrame, reference: pd.DataFrame) -> tuple[bool, str, pd.DataFrame]:
    """(comparable, summary, per-cell frame) of this study against a reference study.

    Not comparable -- and never compared -- when the profiles or the synthetic data's generator
    versions differ. Otherwise, for every table cell both have: each mean and 95 % interval, the difference of
    the two means with its Welch 95 % interval and whether that interval holds 0 (the criterion of a
    reproduction: docs/study.md), whether our mean lies inside the reference's interval and the reference's
    inside ours; and for every comparison of Tables 2-6 whether the two verdicts match.
    """
    empty = pd.DataFrame()
    if ours.empty or reference.empty:
        return (
            False,
            "Nothing to compare: "
            + ("this study has no finished run." if ours.empty else "the reference table is empty."),
            empty,
        )
    for column, what in (("profile", "profile"), ("data_version", "data-generator version")):
        mine = {(r.dataset, str(getattr(r, column))) for r in ours.itertuples()}
        theirs = {(r.dataset, str(getattr(r, column))) for r in reference.itertuples()}
        if column == "profile" and {p for _, p in mine} != {p for _, p in theirs}:
            return (
                False,
                (
                    f"Not comparable: the reference was made with profile(s) {sorted({p for _, p in theirs})}, "
                    f"this study with {sorted({p for _, p in mine})}."
                ),
                empty,
            )
        shared = {d for d, _ in mine} & {d for d, _ in theirs}
        if {x for x in mine if x[0] in shared} != {x for x in theirs if x[0] in shared}:
            return (
                False,
                (
                    f"Not comparable: the reference was made with another {what} "
                    f"(reference: {sorted(theirs)}; this study: {sorted(mine)})."
                ),
                empty,
            )
    a, b = cell_statistics(ours), cell_statistics(reference)
    merged = a.merge(b, on=CELL, suffixes=("", "_ref"))
    if merged.empty:
        return False, "Nothing to compare: this study and the reference share no table cell.", empty
    merged["ours_in_ref"] = [
        Interval(r.mean_ref, r.low_ref, r.high_ref, r.n_ref).contains(r.mean) for r in merged.itertuples()
    ]
    merged["ref_in_ours"] = [Interval(r.mean, r.low, r.high, r.n).contains(r.mean_ref) for r in merged.itertuples()]
    samples, samples_ref = cell_samples(ours), cell_samples(reference)
    welch = [
        welch_interval(samples[key].values(), samples_ref[key].values())
        for key in merged[CELL].itertuples(index=False, name=None)
    ]
    merged["difference"] = [w.mean for w in welch]
    merged["difference_low"] = [w.low for w in welch]
    merged["difference_high"] = [w.high for w in welch]
    merged["difference_within_interval"] = [w.contains(0.0) for w in welch]
    va, vb = comparisons(ours), comparisons(reference)
    keys = ["table", "row", "dataset", "metric"]
    cols = keys + ["verdict", "verdict_holm"]
    verdicts = va[cols].merge(vb[cols], on=keys, suffixes=("", "_ref"))
    matching = int((verdicts.verdict == verdicts.verdict_ref).sum())
    matching_holm = int((verdicts.verdict_holm == verdicts.verdict_holm_ref).sum())
    opposite = int(
        (
            ((verdicts.verdict_holm == "agrees") & (verdicts.verdict_holm_ref == "contradicts"))
            | ((verdicts.verdict_holm == "contradicts") & (verdicts.verdict_holm_ref == "agrees"))
        ).sum()
    )
    both = int((merged.ours_in_ref & merged.ref_in_ours).sum())
    within = int(merged.difference_within_interval.sum())
    headline = headline_verdicts(va), headline_verdicts(vb)
    summary = (
        f"{len(merged)} cells in common: in {within} ({100 * within / len(merged):.0f} %) the difference of the two "
        f"means lies within its Welch 95 % interval of 0; in {both} ({100 * both / len(merged):.0f} %) each mean lies inside the "
        f"other's 95 % interval; ours inside the reference's in {int(merged.ours_in_ref.sum())}, the reference's "
        f"inside ours in {int(merged.ref_in_ours.sum())}. {matching_holm} of {len(verdicts)} verdicts after Holm "
        f"({matching} before it) match the reference's; {opposite} agree on one side and contradict on the "
        f"other. GRL vs the Baseline (after Holm), this study: {headline[0]}; the reference: {headline[1]}"
        f" — {'the same' if headline[0] == headline[1] else 'different'}."
    )
    merged.attrs["numbers"] = {
        "cells": len(merged),
        "cells_difference_within_interval": within,
        "both_inside": both,
        "verdicts": len(verdicts),
        "matching": matching,
        "matching_holm": matching_holm,
        "opposite": opposite,
        "headline": headline,
    }
    return True, summary, merged


def reference_comparison(profile: str, ours: pd.DataFrame, reference_path=None) -> tuple[dict | None, str, str]:
    """(numbers, label, Markdown) of this study against the reference (a given results.csv, else the committed
    one); numbers is None when nothing was compared (no reference, not comparable, or this study is it)."""
    if reference_path:
        reference, label = read_results_csv(reference_path), f"`{_shown_path(reference_path)}`"
    else:
        reference, label = committed_reference(profile)
    if reference is None:
        return None, label, label
    if _same_numbers(ours, reference):
        return None, label, f"Reference: {label}. This study *is* the reference (identical per-seed numbers)."
    ok, summary, merged = compare_with_reference(ours, reference)
    return (merged.attrs.get("numbers") if ok else None), label, f"Reference: {label}.\n\n{summary}"


def _shown_path(path) -> str:
    """``path`` relative to the checkout when it lies inside it: a committed report never names this machine's
    folders."""
    from grl.paths import project_root

    root, resolved = project_root(), Path(path).resolve()
    return str(resolved.relative_to(root)) if root and resolved.is_relative_to(root) else str(path)


def _same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    keys = ["experiment", "dataset", "split", "seed", "feature", "metric"]
    if len(a) != len(b):
        return False
    x = a.sort_values(keys).reset_index(drop=True)
    y = b.sort_values(keys).reset_index(drop=True)
    return bool(
        (x[keys].astype(str).values == y[keys].astype(str).values).all() and ((x.value - y.value).abs() < 5e-6).all()
    )
