"""Command line: ``python -m grl {reproduce, compare, train, list, synth, bench, refresh-notebooks}`` [--debug]."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from grl.config import DATASETS, ConfigError, parse_overrides
from grl.experiments import (
    CATALOGUE,
    EXPERIMENTS,
    OUR_TABLES,
    PROFILES,
    TABLE_TITLES,
    TABLES,
    parse_seeds,
    runs_for,
    select_rows,
    study_dir,
)
from grl.run_folder import CHECKPOINT, MODEL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grl", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default: cpu)")
        p.add_argument(
            "--only",
            default=None,
            help='restrict to tables, experiments or datasets, comma-separated: "table4", "table1,table3"',
        )
        p.add_argument("--dataset", default=None, help=f"restrict to one dataset: {', '.join(DATASETS)}")
        p.add_argument(
            "--seeds",
            default=None,
            metavar="0,1,2",
            help="seeds or ranges (0,1,2 or 0-9); every run of every dataset is trained once per seed "
            "(default: the profile's own, which may train the small sets on fewer)",
        )
        p.add_argument(
            "--recipe",
            default=None,
            help="paper (the recipe rule) | paper-text | release (the authors' code); default: the profile's",
        )
        p.add_argument(
            "--data-root",
            action="append",
            default=[],
            metavar="NAME=PATH",
            help="real dataset root, e.g. mars=/data/MARS (repeatable); without it: built-in synthetic data",
        )

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a config field for every run, e.g. --set lr=0.0001 --set epochs=10 (repeatable; the fields are "
            "those of grl.config.Config; an experiment's own fields, e.g. Table 4's seq_len, stay its own)",
        )
        p.add_argument(
            "--config", default=None, metavar="FILE.yaml", help="config fields from a YAML file (--set wins over it)"
        )

    p = sub.add_parser("reproduce", help="run the catalogue through papermill, then Figure 4 and the report")
    selection(p)
    overrides(p)
    p.add_argument("--root", default=None, help="write runs and report here instead of reports/PROFILE")
    p.add_argument(
        "--reference",
        default=None,
        metavar="RESULTS.csv",
        help="compare with this per-seed results table (default: the committed reports/PROFILE/results.csv)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="train N runs at once, the cores divided among them (default 1; `make study` uses one per "
        "core). A Ctrl-C with N > 1 stops the runs in flight by killing their kernels",
    )
    p.add_argument(
        "--procs-per-run",
        type=int,
        default=1,
        metavar="N",
        help="train each run on N processes together (torchrun, DistributedDataParallel; on a GPU machine "
        "N GPUs per job). Default 1",
    )
    p.add_argument(
        "--executor",
        default="local",
        help="local (default): the runs on this machine; slurm: each unfinished run as one SLURM job "
        "through submitit (the report is then built here)",
    )
    p.add_argument("--slurm-partition", default=None, metavar="P", help="SLURM partition (default: the cluster's)")
    p.add_argument(
        "--slurm-time",
        type=int,
        default=None,
        metavar="MINUTES",
        help="time limit of each job (default 720); a job out of time is requeued and resumes",
    )
    p.add_argument("--slurm-gpus-per-run", type=int, default=None, metavar="N", help="GPUs per job (default 1)")
    p.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra sbatch option, e.g. account=myproject or mem=64G (repeatable)",
    )
    p = sub.add_parser("compare", help="did a study reproduce the reference? (per-seed results tables)")
    p.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default: cpu)")
    p.add_argument("--root", default=None, help="the study's folder (default: reports/PROFILE)")
    p.add_argument(
        "--reference",
        default=None,
        metavar="RESULTS.csv",
        help="the reference table (default: reports/PROFILE/results.csv as committed)",
    )
    p = sub.add_parser("list", help="print the catalogue: tables, rows, runs and whether each run is done")
    selection(p)
    overrides(p)
    p = sub.add_parser(
        "calibrate",
        help="train the Baseline only and print it against the benchmark's calibration "
        "targets (README, 'Calibrating the built-in benchmark')",
    )
    p.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default: cpu)")
    p.add_argument("--seeds", default=None, metavar="0,1,2", help="default: the profile's")
    p.add_argument("--dataset", default=None, help=f"only this dataset: {', '.join(DATASETS)}")
    p.add_argument("--root", default=None, help="runs go here (default: reports/PROFILE, where the study reuses them)")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="runs at once (default: one per core)")
    p = sub.add_parser("train", help="train (or load) one experiment in-process and print its metrics")
    p.add_argument("--experiment", required=True, help=f"one of {', '.join(EXPERIMENTS)}")
    p.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)}")
    p.add_argument("--dataset", default="mars", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--split", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default="", help="the dataset's root (default: built-in synthetic data)")
    p.add_argument(
        "--recipe",
        default=None,
        help="paper (the recipe rule) | paper-text | release (the authors' code); default: the profile's",
    )
    p.add_argument(
        "--run-dir", default="", help="the run's folder (default: the catalogue's, reports/PROFILE/runs/NAME)"
    )
    overrides(p)

    def test_set(p: argparse.ArgumentParser) -> None:
        p.add_argument("source", help=f"a finished run folder, its {MODEL}, or a training {CHECKPOINT}")
        p.add_argument(
            "--dataset", default=None, help=f"test on this dataset ({', '.join(DATASETS)}); default: the model's"
        )
        p.add_argument(
            "--data-root", default=None, help="its root (default: the model's, or the built-in synthetic set)"
        )
        p.add_argument("--split", type=int, default=None, help="iLIDS-VID / PRID2011 split 0..9 (default: the model's)")
        p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
        overrides(p)

    p = sub.add_parser(
        "evaluate", help=f"test a trained model (run folder, {MODEL}, {CHECKPOINT} or features .npz); no training"
    )
    test_set(p)
    p.add_argument("--rerank", action="store_true", help="also k-reciprocal re-ranking of the main feature")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write the metrics here (default: printed only)")
    p = sub.add_parser("extract", help="write every test tracklet's features, ids, cameras and frames to a .npz")
    test_set(p)
    p.add_argument("--out", required=True, metavar="FILE.npz", help="the features file (grl.engine.inference)")
    p = sub.add_parser(
        "visrank", help="draw ranked lists: each query's top-k gallery tracklets under one or more models"
    )
    p.add_argument("sources", nargs="+", help="run folders or model files, compared on the same queries")
    p.add_argument("--label", action="append", default=[], help="a name per source, in order (default: folder name)")
    p.add_argument("--queries", default=None, metavar="0,5,9", help="query indices (default: --random of them)")
    p.add_argument("--random", type=int, default=4, metavar="N", help="draw N queries at random (default 4)")
    p.add_argument("--seed", type=int, default=0, help="the random queries' seed (default 0)")
    p.add_argument("--k", type=int, default=5, help="gallery tracklets per query (default 5)")
    p.add_argument("--frames", type=int, default=3, help="frames shown per tracklet (default 3)")
    p.add_argument("--dataset", default=None, help="test on this dataset (default: the models')")
    p.add_argument("--data-root", default=None, help="its root (default: the models', or the built-in set)")
    p.add_argument("--split", type=int, default=None, help="iLIDS-VID / PRID2011 split (default: the models')")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the figure")
    p = sub.add_parser(
        "check-data", help="count a full dataset copy against its published figures; list what is missing or unreadable"
    )
    p.add_argument("dataset", help="mars, ilidsvid, prid2011, dukemtmcvidreid or lsvid")
    p.add_argument("root", help="the dataset's root folder")
    p.add_argument(
        "--decode", default="first", choices=("first", "all", "none"),
        help="frames to open: each tracklet's first (default), all of them (slow on MARS), none",
    )  # fmt: skip
    sub.add_parser("synth", help="generate the built-in synthetic datasets (grl.data.synthetic)", add_help=False)
    sub.add_parser("bench", help="run the benchmarks (grl.bench)", add_help=False)
    p = sub.add_parser(
        "refresh-notebooks", help="re-execute the committed notebooks in place (quick defaults), for nbval"
    )
    p.add_argument("names", nargs="*", help="notebook file names (default: all in notebooks/)")
    p.add_argument(
        "--reuse-runs",
        action="store_true",
        help="use the existing reports/quick runs instead of computing into a fresh temporary folder",
    )
    return parser


# Exit codes of an expected error (one line on stderr; the traceback with --debug): 1 the batch cannot go on,
# 2 bad input (configuration, data root or layout, a frame, a weights or model file), 3 the training diverged,
# 75 preempted (SIGTERM / SIGUSR1: a checkpoint of the current step was written; run the same command again -- 75
# is sysexits' EX_TEMPFAIL, "try again later"), 130 Ctrl-C.
EXIT_BATCH, EXIT_INPUT, EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_INTERRUPTED = 1, 2, 3, 75, 130


def _expected_errors() -> tuple[tuple[type, int], ...]:
    from grl.batch.core import BatchError
    from grl.data.datasets import CorruptFrameError
    from grl.engine.trainer import RunMismatchError, TrainingDiverged, TrainingPreempted

    return (
        (BatchError, EXIT_BATCH),
        (TrainingDiverged, EXIT_DIVERGED),
        (TrainingPreempted, EXIT_PREEMPTED),
        (ConfigError, EXIT_INPUT),
        (FileNotFoundError, EXIT_INPUT),  # DatasetNotFoundError, PretrainedWeightsError: they say what goes where
        (CorruptFrameError, EXIT_INPUT),
        (RunMismatchError, EXIT_INPUT),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grl``. An expected error is one line on stderr and a non-zero exit (``EXIT_*``); ``--debug``
    (anywhere on the line) shows its traceback instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = _parser()
    if not argv:
        parser.print_help()
        return 0
    from grl.batch.core import BatchInterrupted

    try:
        # synth and bench own their arguments.
        if argv[0] == "synth":
            from grl.data.synthetic.cli import main as synth_main

            return synth_main(argv[1:]) or 0
        if argv[0] == "bench":
            return _bench(argv[1:])
        return _dispatch(parser.parse_args(argv))
    except BatchInterrupted as exc:  # Ctrl-C: one line, not 70 lines of kernel tracebacks
        _quiet_asyncio()
        print(f"\n{exc.message()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _quiet_asyncio()
        print("\ninterrupted; nothing finished is lost — rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = next((code for kind, code in _expected_errors() if isinstance(exc, kind)), None)
        if code is None or debug:
            raise
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank meets it: rank 0 says it once
            print(f"error: {_one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return code


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _quiet_asyncio() -> None:
    """The interrupted kernel's client task ends with DeadKernelError, which asyncio logs with a traceback
    when the task is collected at exit ("exception was never retrieved"): noise after the one line."""
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _dispatch(args: argparse.Namespace) -> int:
    from grl import batch

    if args.command == "reproduce":
        from grl.batch import cluster

        roots = batch.parse_data_roots(args.data_root)
        slurm = cluster.slurm_options(
            args.executor, args.slurm_partition, args.slurm_time, args.slurm_gpus_per_run, args.slurm_option
        )
        return batch.reproduce(
            args.profile,
            args.only,
            args.dataset,
            roots,
            parse_seeds(args.seeds),
            root=args.root,
            reference=args.reference,
            recipe=args.recipe,
            jobs=1 if args.jobs is None else args.jobs,
            executor=args.executor,
            slurm=slurm,
            procs_per_run=args.procs_per_run,
            overrides=parse_overrides(args.set, args.config),
        )
    if args.command == "compare":
        return _compare(args)
    if args.command == "list":
        return _list(args)
    if args.command == "calibrate":
        return _calibrate(args)
    if args.command == "train":
        return _train(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "visrank":
        return _visrank(args)
    if args.command == "check-data":
        from grl.data.extra_datasets import check_data

        ok, text = check_data(args.dataset, args.root, args.decode)
        print(text)
        print("as published and readable" if ok else "NOT as published, or frames missing / unreadable: see above")
        return 0 if ok else 1
    if args.command == "extract":
        from grl.engine import inference

        path = inference.extract(
            args.source,
            args.out,
            dataset=args.dataset,
            data_root=args.data_root,
            split=args.split,
            device=args.device,
            overrides=parse_overrides(args.set, args.config),
        )
        print(f"features of {args.source} -> {path}")
        return 0
    if args.command == "refresh-notebooks":
        for path in batch.refresh_notebooks(args.names or None, fresh=not args.reuse_runs):
            print(f"refreshed {path}")
        return 0
    raise AssertionError(args.command)


def _compare(args: argparse.Namespace) -> int:
    """Exit 0 when comparable (whatever the agreement), 1 when not comparable or nothing to compare."""
    from grl import report
    from grl.experiments import get_profile, profile_dir

    get_profile(args.profile)
    folder = profile_dir(args.profile, args.root)
    path = folder / "results.csv"
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist: run `python -m grl reproduce --profile {args.profile}"
            f"{' --root ' + str(args.root) if args.root else ''}` first (it writes results.csv)"
        )
    try:
        ours = report.read_results_csv(path)
        if args.reference:
            if not Path(args.reference).is_file():
                raise ConfigError(f"--reference {args.reference}: no such file (expected a results.csv)")
            reference, label = report.read_results_csv(args.reference), args.reference
        else:
            reference, label = report.committed_reference(args.profile)
    except ValueError as exc:  # a table that is not ours: its path and what was expected
        raise ConfigError(str(exc)) from None
    if reference is None:
        print(label)
        return 1
    comparable, summary, cells = report.compare_with_reference(ours, reference)
    print(f"this study: {path}\nreference:  {label}\n{summary}")
    if comparable:
        outside = cells[~(cells.ours_in_ref & cells.ref_in_ours)]
        if len(outside):
            print("cells where a mean lies outside the other's interval:")
            print(
                outside[
                    [
                        "experiment",
                        "dataset",
                        "feature",
                        "metric",
                        "mean",
                        "low",
                        "high",
                        "mean_ref",
                        "low_ref",
                        "high_ref",
                    ]
                ]
                .round(2)
                .to_string(index=False)
            )
    return 0 if comparable else 1


def _train(args: argparse.Namespace) -> int:
    from grl.batch.runs import run_or_load
    from grl.batch.shared import check_data
    from grl.engine import distributed
    from grl.experiments import make_run
    from grl.report import metrics_table

    run = make_run(
        args.experiment,
        args.dataset,
        args.profile,
        split=args.split,
        seed=args.seed,
        data_root=args.data_root,
        recipe=args.recipe,
        run_dir=args.run_dir or None,
        overrides=parse_overrides(args.set, args.config),
    )
    # Under torchrun every rank runs this; they train the run together and rank 0 alone speaks.
    with distributed.session(run.config.device):
        with distributed.main_first():
            check_data([run])
        if distributed.is_main():
            print(f"{run.name}: {run.run_dir}")
        result = run_or_load(run, progress=distributed.is_main())
        if distributed.is_main():
            print(metrics_table(result).to_markdown())
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Print the metrics table of a model (or a features file) on a test set; with --out also write it as JSON."""
    from grl.engine import inference
    from grl.report import metrics_table
    from grl.utils import atomic_write_json

    if args.source.endswith(".npz") and args.device != "cpu":
        raise ConfigError("--device: a features file is ranked on the CPU")
    found = inference.evaluate(
        args.source,
        dataset=args.dataset,
        data_root=args.data_root,
        split=args.split,
        rerank=args.rerank or None,
        device=args.device,
        overrides=parse_overrides(args.set, args.config),
    )
    print(f"{found['source']} on {found['dataset']} split {found['split']} ({found['data_root']}):")
    print(metrics_table({"metrics": found["metrics"]}).to_markdown())
    if args.out:
        atomic_write_json(args.out, found)
        print(f"metrics -> {args.out}")
    return 0


def _visrank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from grl import viz
    from grl.engine import inference

    if args.label and len(args.label) != len(args.sources):
        raise ConfigError(f"--label: {len(args.label)} labels for {len(args.sources)} sources; give one per source")
    for name, value, low in (("--k", args.k, 1), ("--frames", args.frames, 1), ("--random", args.random, 1)):
        if value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")
    queries = None
    if args.queries:
        try:
            queries = [int(q) for q in args.queries.split(",")]
        except ValueError:
            raise ConfigError(f"--queries must be comma-separated query indices such as 0,5,9; got {args.queries!r}")
    labels = args.label or [Path(s).name if Path(s).is_dir() else Path(s).parent.name for s in args.sources]
    lists = inference.ranked_lists(
        list(zip(labels, args.sources)),
        queries,
        random_queries=args.random,
        seed=args.seed,
        k=args.k,
        dataset=args.dataset,
        data_root=args.data_root,
        split=args.split,
        device=args.device,
    )
    path = viz.save(viz.ranked_lists(lists, frames=args.frames), args.out)
    print(f"ranked lists of {len({r['query_index'] for r in lists})} queries x {len(labels)} models -> {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from grl.batch.study import parse_data_roots

    overrides = parse_overrides(args.set, args.config)
    runs = runs_for(
        args.profile,
        args.only,
        args.dataset,
        seeds=parse_seeds(args.seeds),
        data_roots=parse_data_roots(args.data_root),
        recipe=args.recipe,
        root=study_dir(args.profile, None, overrides),
        overrides=overrides,
    )
    by_pair = {}
    for run in runs:
        by_pair.setdefault((run.experiment, run.dataset), []).append(run)
    rows = select_rows(args.only, args.dataset)
    for table in TABLES + OUR_TABLES:
        table_rows = [r for r in rows if r.table == table]
        if not table_rows:
            continue
        print(TABLE_TITLES[table])
        for r in table_rows:
            pair = by_pair.get((r.experiment, r.dataset), [])
            done = sum(run.is_done() for run in pair)
            print(f"  {r.row:<22} {r.dataset:<9} feature {r.feature:<4} <- {r.experiment:<19} {done}/{len(pair)} done")
    print(f"\n{len(runs)} unique runs for profile {args.profile!r} (of {len(CATALOGUE)} table cells' rows):")
    for run in runs:
        print(f"  {'done   ' if run.is_done() else 'missing'}  {run.run_dir}")
    return 0


# The calibration targets (README, "Calibrating the built-in benchmark"): Baseline, mean over the seeds.
CALIBRATION_TARGETS = {
    ("mars", "rank1"): (30, 70),
    ("mars", "mAP"): (30, 70),
    ("ilidsvid", "rank1"): (40, 85),
    ("prid2011", "rank1"): (40, 85),
}


def _calibrate(args: argparse.Namespace) -> int:
    """Exit 0 when every target is met, 1 otherwise. Trains the Baseline runs only (never GRL's)."""
    from grl import batch
    from grl.experiments import profile_dir
    from grl.report import results_frame
    from grl.stats import t_interval

    runs = runs_for(args.profile, "baseline", args.dataset, seeds=parse_seeds(args.seeds), root=args.root)
    runs = [r for r in runs if r.experiment == "baseline"]
    out = profile_dir(args.profile, args.root)
    jobs = batch.check_jobs(batch.default_jobs(args.profile) if args.jobs is None else args.jobs)
    with batch.batch_lock(out):
        batch.prepare_shared(runs, jobs)
        batch.check_data(runs)
        outcome = batch.run_batch(runs, status_path=None, jobs=jobs)
    ours = results_frame([r for r in runs if r.is_done()])
    print(f"\nBaseline (F^g), profile {args.profile!r}, data {runs[0].config.data_version}: mean ± 95 % interval")
    met = not outcome.failed
    for (dataset, metric), (low, high) in CALIBRATION_TARGETS.items():
        if args.dataset and dataset != args.dataset:
            continue
        values = ours[(ours.dataset == dataset) & (ours.feature == "g") & (ours.metric == metric)].value
        iv = t_interval(values.tolist()) if len(values) else None
        ok = iv is not None and low <= iv.mean <= high
        met &= ok
        print(
            f"  {dataset:<9} {metric:<6} {iv.text(1) if iv else '—':>14}  target {low}-{high}  "
            f"{'in range' if ok else 'OUT OF RANGE'}  (per seed: {', '.join(f'{v:.1f}' for v in values)})"
        )
    return 0 if met else 1


def _bench(argv: list[str]) -> int:
    import runpy

    saved = sys.argv
    sys.argv = ["python -m grl.bench", *argv]
    try:
        runpy.run_module("grl.bench", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
