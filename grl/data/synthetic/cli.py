"""Command line: ``python -m grl.data.synthetic`` (and ``python -m grl synth``) generates the datasets."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Sequence

from grl.data.synthetic.sheet import contact_sheet
from grl.data.synthetic.sizes import DATASETS
from grl.data.synthetic.store import default_root, ensure_synthetic, generate, read_manifest


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m grl.data.synthetic [--dataset all] [--root DIR] [--seed N] [--contact-sheet PATH]``."""
    from grl.data import synthetic  # the package's docstring describes the generator

    parser = argparse.ArgumentParser(prog="python -m grl.data.synthetic", description=synthetic.__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument(
        "--root",
        default=None,
        help="dataset root (with --dataset all: parent folder of one folder per dataset); "
        "default <data_dir>/synthetic/<name>",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace a different generated dataset at the root")
    parser.add_argument(
        "--contact-sheet",
        default=None,
        metavar="PATH",
        help="also save a contact sheet (PNG); with --dataset all, one per dataset as PATH_<name>.png",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = DATASETS if args.dataset == "all" else (args.dataset,)
    for name in names:
        root = None if args.root is None else (Path(args.root) / name if args.dataset == "all" else Path(args.root))
        root = root if root is not None else default_root(name)
        t0 = time.perf_counter()
        if args.overwrite:
            generate(name, root, args.seed, overwrite=True, progress=None)
        else:
            ensure_synthetic(name, root, args.seed)
        counts = (read_manifest(root) or {}).get("counts", {})
        print(f"{name}: {root} ({time.perf_counter() - t0:.1f}s) {json.dumps(counts)}")
        if args.contact_sheet:
            path = Path(args.contact_sheet)
            if len(names) > 1:
                path = path.with_name(f"{path.stem}_{name}{path.suffix or '.png'}")
            path.parent.mkdir(parents=True, exist_ok=True)
            contact_sheet(root, name).save(path)
            print(f"contact sheet: {path}")
    return 0
