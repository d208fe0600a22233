"""``python -m grl check-data``: a full dataset copy counted against its published figures."""

from __future__ import annotations

import argparse

HELP = "count a full dataset copy against its published figures; list what is missing or unreadable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="mars, ilidsvid, prid2011, dukemtmcvidreid or lsvid")
    p.add_argument("root", help="the dataset's root folder")
    p.add_argument(
        "--decode", default="first", choices=("first", "all", "none"),
        help="frames to open: each tracklet's first (default), all of them (slow on MARS), none",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from grl.data.extra_datasets import check_data

    ok, text = check_data(args.dataset, args.root, args.decode)
    print(text)
    print("as published and readable" if ok else "NOT as published, or frames missing / unreadable: see above")
    return 0 if ok else 1
