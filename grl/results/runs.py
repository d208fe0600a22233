"""The runs behind a report: their list, which failed, the machines and data they ran on (the provenance section)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from grl.config import overrides_tag
from grl.experiments import PROFILES, Run, load_result
from grl.provenance import git_commit


# ---------------------------------------------------------------------------------------
# provenance
def _overrides_line(runs: list[Run]) -> str:
    """The config fields the study's runs were given on the command line (an experiment's own fields stay its own,
    so a field may apply to some runs only)."""
    tags = sorted({overrides_tag(r.overrides) for r in runs if r.overrides})
    if not tags:
        return "none (the profile's settings)"
    some = [r for r in runs if not r.overrides]
    return ", ".join(f"`{t}`" for t in tags) + (
        f" (not on {len(some)} runs whose experiment fixes them)" if some else ""
    )


def failed_runs(runs: list[Run], status_path: str | Path) -> dict[str, str]:
    """Run name -> the error, for each of ``runs`` that the last batch marked failed (its ``status.json``) and that
    has no result (a diverged run writes none; a failed run that a later batch finished is not failed)."""
    try:
        status = json.loads(Path(status_path).read_text()).get("runs", {})
    except (OSError, ValueError):
        return {}
    return {
        run.name: str(status[run.name].get("error", "failed"))
        for run in runs
        if status.get(run.name, {}).get("status") == "failed" and load_result(run.run_dir, run.config.key()) is None
    }


def experiment_and_dataset(run_name: str) -> tuple[str, str]:
    """``<experiment>-<dataset>-split<k>-seed<s>-<key>`` -> (experiment, dataset)."""
    head = run_name.rsplit("-split", 1)[0]
    experiment, _, dataset = head.rpartition("-")
    return experiment, dataset


def runs_frame(runs: list[Run], failed: dict[str, str] | None = None) -> pd.DataFrame:
    """One line per run: name, status (done, failed, stale or missing), epochs, wall time, device, seed, data root,
    commit."""
    records = []
    failed = failed or {}
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        state = (
            "done"
            if result
            else ("failed" if run.name in failed else "stale" if load_result(run.run_dir) else "missing")
        )
        records.append(
            {
                "run": run.name,
                "experiment": run.experiment,
                "dataset": run.dataset,
                "split": run.split,
                "status": state,
                "epochs": result.get("epochs_done") if result else None,
                "wall_time_s": round(float(result.get("wall_time_s", 0.0)), 1) if result else None,
                "device": result.get("device") if result else None,
                "seed": run.config.seed,
                "data_root": _data_label(run),
                "commit": result.get("commit") if result else None,
            }
        )
    return pd.DataFrame(records)


def _data_label(run: Run) -> str:
    root = run.config.data_root
    if not root:
        return (
            "(built-in synthetic)"
            if run.config.data_size == "full"
            else f"(built-in synthetic, {run.config.data_size})"
        )
    return root


def _machines(runs: list[Run]) -> list[str]:
    """Distinct machine descriptions of the finished runs: CPU, ISA features, threads, library versions."""
    seen = []
    for run in runs:
        result = load_result(run.run_dir, run.config.key())
        machine = (result or {}).get("machine")
        if not machine:
            continue
        text = (
            f"{machine.get('cpu', '?')} [{', '.join(machine.get('isa', [])) or 'no AVX2'}; ATen "
            f"{machine.get('aten_cpu_capability', '?')}], {machine.get('threads', '?')} torch thread(s), Python "
            f"{machine.get('python', '?')}, torch {machine.get('torch', '?')}, numpy {machine.get('numpy', '?')}"
        )
        if machine.get("environment"):
            text += f", {' '.join(f'{k}={v}' for k, v in sorted(machine['environment'].items()))}"
        if text not in seen:
            seen.append(text)
    return seen


def provenance(profile: str, runs: list[Run]) -> str:
    """Markdown bullet list: date, profile, data (and the generator's version), seeds, runs, commits,
    the machines that trained (CPU, instruction-set features, threads, library versions), the machine
    that built the report, arithmetic, wall time, MARS gallery convention."""
    from grl.provenance import machine_info

    frame = runs_frame(runs)
    done = frame[frame.status == "done"] if len(frame) else frame
    prof = PROFILES[profile]
    roots = sorted(set(frame.data_root)) if len(frame) else []
    versions = sorted({f"{r.dataset} {r.config.data_version}" for r in runs if r.config.data_version})
    mars = [r for r in runs if r.dataset == "mars"]
    if mars:
        gallery = (
            "gallery **includes** the query tracklets (the authors' release convention)"
            if mars[0].config.mars_gallery_includes_queries
            else "gallery **excludes** the query tracklets (queries without a cross-camera match are skipped)"
        )
    else:
        gallery = "no MARS run selected"

    def listed(column: str) -> str:
        values = sorted({str(v) for v in done[column].dropna()}) if len(done) else []
        return ", ".join(values) or "—"

    here = machine_info()
    wall = float(done.wall_time_s.sum()) if len(done) else 0.0
    dtypes = sorted({r.config.dtype for r in runs})
    lines = [
        f"- **Report built**: {time.strftime('%Y-%m-%d %H:%M %Z')} at commit {git_commit(short=True)} on {here['cpu']} "
        f"[{', '.join(here['isa']) or 'no AVX2'}], Python {here['python']}, torch {here['torch']}, numpy {here['numpy']}",
        f"- **Profile**: `{profile}` — {prof.description}",
        f"- **Data**: {', '.join(roots) or '—'}" + (f"; generator version {', '.join(versions)}" if versions else ""),
        f"- **Seeds**: {', '.join(str(s) for s in sorted(set(frame.seed))) if len(frame) else '—'} "
        f"(each cell: mean ± 95 % t-interval over seeds × splits)",
        f"- **Runs**: {len(done)} of {len(frame)} done",
        f"- **Commit** (of the runs): {listed('commit')}",
        f"- **Trained on**: {'; '.join(_machines(runs)) or listed('device')}",
        f"- **Arithmetic**: {', '.join(dtypes)}"
        + (
            " (float32 results move in their last digits with the CPU's instruction set and the thread count; "
            "the intervals over seeds are what carries across machines)"
            if "float32" in dtypes
            else " on a fixed thread count (identical on every x86-64 CPU with AVX2 or AVX-512)"
        ),
        f'- **Recipe**: {", ".join(sorted({r.config.recipe for r in runs})) or "—"} (README, "The authors\' recipe")',
        f"- **Overrides** (--set / --config): {_overrides_line(runs)}",
        "- **Model selection**: "
        + (
            "⚠ **test-set selection** — each run keeps the epoch with the best Rank-1 on the *test set* "
            "(the authors' release does this); these numbers are optimistic and not comparable to a held-out choice"
            if any(r.config.select_best for r in runs)
            else "the model after the last epoch (no selection)"
        ),
        f"- **Training + evaluation wall time**: {wall / 60:.1f} min in total",
        f"- **MARS gallery convention**: {gallery}",
        "- **Test distance**: cosine; iLIDS-VID / PRID2011 numbers are averaged over the profile's splits",
    ]
    return "\n".join(lines)
