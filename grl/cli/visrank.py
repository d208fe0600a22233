"""``python -m grl visrank``: ranked lists, each query's top-k gallery tracklets under one or more models."""

from __future__ import annotations

import argparse
from pathlib import Path

from grl.config import ConfigError

HELP = "draw ranked lists: each query's top-k gallery tracklets under one or more models"


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
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
