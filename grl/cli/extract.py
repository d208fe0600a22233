"""``python -m grl extract``: every test tracklet's features, ids, cameras and frames to a ``.npz``."""

from __future__ import annotations

import argparse

from grl.cli import options
from grl.config import parse_overrides

HELP = "write every test tracklet's features, ids, cameras and frames to a .npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.test_set(p)
    p.add_argument("--out", required=True, metavar="FILE.npz", help="the features file (grl.engine.inference)")


def run(args: argparse.Namespace) -> int:
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
