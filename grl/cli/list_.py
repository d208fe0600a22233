"""``python -m grl list``: the catalogue's tables, rows and runs, and whether each run is done."""

from __future__ import annotations

import argparse

from grl.catalogue import CATALOGUE, OUR_TABLES, TABLE_TITLES, TABLES, select_rows
from grl.cli import options
from grl.config import parse_overrides
from grl.experiments import parse_seeds, study_dir

HELP = "print the catalogue: tables, rows, runs and whether each run is done"


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.selection(p)
    options.overrides(p)


def run(args: argparse.Namespace) -> int:
    from grl.batch.adaptive import study_runs
    from grl.batch.study import parse_data_roots

    overrides = parse_overrides(args.set, args.config)
    runs = study_runs(
        args.profile,
        args.only,
        args.dataset,
        seeds=parse_seeds(args.seeds),
        data_roots=parse_data_roots(args.data_root),
        recipe=args.recipe,
        root=study_dir(args.profile, None, overrides),
        overrides=overrides,
    )
    by_pair: dict = {}
    for one in runs:
        by_pair.setdefault((one.experiment, one.dataset), []).append(one)
    rows = select_rows(args.only, args.dataset)
    for table in TABLES + OUR_TABLES:
        table_rows = [r for r in rows if r.table == table]
        if not table_rows:
            continue
        print(TABLE_TITLES[table])
        for r in table_rows:
            pair = by_pair.get((r.experiment, r.dataset), [])
            done = sum(one.is_done() for one in pair)
            print(f"  {r.row:<22} {r.dataset:<9} feature {r.feature:<4} <- {r.experiment:<19} {done}/{len(pair)} done")
    print(f"\n{len(runs)} unique runs for profile {args.profile!r} (of {len(CATALOGUE)} table cells' rows):")
    for one in runs:
        print(f"  {'done   ' if one.is_done() else 'missing'}  {one.run_dir}")
    return 0
