"""``python -m grl evaluate``: a trained model (or a features file) tested on a test set; no training."""

from __future__ import annotations

import argparse

from grl.cli import options
from grl.config import ConfigError, parse_overrides
from grl.run_folder import CHECKPOINT, MODEL

HELP = f"test a trained model (run folder, {MODEL}, {CHECKPOINT} or features .npz); no training"


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.test_set(p)
    p.add_argument("--rerank", action="store_true", help="also k-reciprocal re-ranking of the main feature")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write the metrics here (default: printed only)")


def run(args: argparse.Namespace) -> int:
    """Print the metrics table; with --out also write it as JSON."""
    from grl.engine import inference
    from grl.results import metrics_table
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
