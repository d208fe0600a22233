"""Arguments several commands share: which runs (profile, tables, datasets, seeds, recipe, data roots), config
overrides, and a test set for a trained model."""

from __future__ import annotations

import argparse

from grl.config import DATASETS
from grl.experiments import PROFILES
from grl.run_folder import CHECKPOINT, MODEL

RECIPE_HELP = "paper (the recipe rule) | paper-text | release (the authors' code); default: the profile's"


def profile(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default: cpu)")


def selection(p: argparse.ArgumentParser) -> None:
    profile(p)
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
    p.add_argument("--recipe", default=None, help=RECIPE_HELP)
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


def test_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help=f"a finished run folder, its {MODEL}, or a training {CHECKPOINT}")
    p.add_argument(
        "--dataset", default=None, help=f"test on this dataset ({', '.join(DATASETS)}); default: the model's"
    )
    p.add_argument("--data-root", default=None, help="its root (default: the model's, or the built-in synthetic set)")
    p.add_argument("--split", type=int, default=None, help="iLIDS-VID / PRID2011 split 0..9 (default: the model's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    overrides(p)
