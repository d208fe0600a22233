"""The runs of the catalogue (grl.catalogue): every experiment of a table row scaled by a profile, on a dataset,
split and seed.

* ``PROFILES`` -- how big a run is (backbone, image size, epochs, splits, where data come from);
* :class:`Run` -- one training, keyed by its configuration, in its run folder; :func:`runs_for` lists a selection's.

A run is keyed by its configuration (:meth:`grl.config.Config.key`): the GRL-full MARS run
serves every table that shows it, and Table 2's test-feature variants are several
evaluations of one trained model, so :func:`runs_for` returns each training once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grl import run_folder
from grl.catalogue import EXPERIMENTS, check_name, select_rows
from grl.config import DATASETS, EXTRA_DATASETS, RECIPES, Config, ConfigError, overrides_tag
from grl.paths import reports_dir


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """How every experiment of the catalogue is scaled for one kind of machine."""

    name: str
    description: str
    overrides: dict[str, Any]
    splits: dict[str, tuple[int, ...]]  # dataset -> split indices to train and average
    data: str  # "synthetic": built-in generated data unless a root is given; "real": roots required
    data_size: str = "full"  # the built-in sets' size preset (grl.data.synthetic.SIZE_PRESETS)
    seeds: tuple[int, ...] = (0,)  # every run of the catalogue is trained once per seed (--seeds overrides)
    # dataset -> how many of the profile's seeds (the first ones) its runs are trained on; absent: all. The small
    # sets' samples are their splits (README "The study's precision"), so one seed each keeps the study's time.
    # Seeds given explicitly (--seeds) train every dataset on every one of them.
    dataset_seeds: dict[str, int] = field(default_factory=dict)
    # dataset -> Config overrides of that dataset's runs only (between the profile's and the experiment's).
    dataset_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # > 0: adaptive seeds (grl.batch.adaptive; docs/study.md, "Adaptive seeds"): after ``seeds``, a comparison still
    # wider than its precision target gets further seeds, below this number; 0: exactly ``seeds``.
    max_seeds: int = 0

    def config(
        self,
        experiment: str,
        dataset: str,
        *,
        split: int = 0,
        seed: int = 0,
        data_root: str = "",
        recipe: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> Config:
        """The Config of one run; ``recipe`` ("paper" | "release", default: the profile's) brings its choices
        (grl.config.RECIPES) under the profile's and the experiment's own settings. Without ``data_root`` a
        synthetic profile's run names the built-in set (size preset and version), which it generates itself.
        ``overrides`` (``--set`` / ``--config``, grl.config.parse_overrides) go over the profile's settings (never over
        the experiment's own: :func:`make_run` refuses those)."""
        check_name(experiment, EXPERIMENTS, "experiment")
        check_name(dataset, DATASETS + EXTRA_DATASETS, "dataset")
        if recipe is not None:
            check_name(recipe, RECIPES, "recipe")
        values = {
            **self.overrides,
            **self.dataset_overrides.get(dataset, {}),
            **(overrides or {}),
            **EXPERIMENTS[experiment],
            "dataset": dataset,
            "split": split,
            "seed": seed,
            "data_root": data_root,
            "data_size": self.data_size,
        }
        if recipe is not None:
            values["recipe"] = recipe
        if self.data == "synthetic" and not data_root and dataset in DATASETS:
            from grl.data.synthetic import data_version, preset_sizes

            values["data_version"] = data_version(dataset, **preset_sizes(self.data_size, dataset))
        return Config.from_dict(values)


_SPLIT0 = {"mars": (0,), "ilidsvid": (0,), "prid2011": (0,)}
# seq_len is deliberately never a profile override: Table 4 varies it, and T=8 must stay the GRL-full run.
PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        description="seconds per run: tiny backbone pretrained on synthetic people, 32x16, a few steps (tests, nbval)",
        overrides={
            "backbone": "tiny",
            "pretrained": True,
            "pretrain_ids": 64,
            "pretrain_steps": 60,
            "height": 32,
            "width": 16,
            "batch_size": 8,
            "epochs": 2,
            "steps_per_epoch": 4,
            "optimizer": "adam",
            "lr": 1e-3,
            "lr_step": 100,
            "device": "cpu",
            "num_workers": 0,
            "amp": False,
            "channels_last": False,
            # What nbval checks must be identical on every x86-64 CPU and thread count: float64
            # on one thread is (measured, README "What is identical where"); float32 is not.
            "dtype": "float64",
            "threads": 1,
            "rerank": True,
        },
        splits=_SPLIT0,
        data="synthetic",
        seeds=(0, 1),
        data_size="small",  # small sets: evaluation and first-time generation take seconds (CI's fresh clone)
    ),
    "cpu": Profile(
        name="cpu",
        description="the main job on 2 CPU cores: tiny backbone pretrained on synthetic people, 64x32, built-in "
        "synthetic data",
        overrides={
            "backbone": "tiny",
            "pretrained": True,
            "pretrain_ids": 600,
            "pretrain_steps": 1200,
            "height": 64,
            "width": 32,
            "batch_size": 16,
            # 9 x 25 = 225 steps, lr x0.1 for the last third. Measured (README, "The study's precision"):
            # against 75 steps the paired variance of the MARS-like comparisons is 4.9x smaller for 2.3x the
            # time per run; on the small sets it is not smaller, so they keep 75 steps (dataset_overrides).
            "epochs": 9,
            "steps_per_epoch": 25,
            "optimizer": "adam",
            "lr": 1e-3,
            "lr_step": 6,
            "lr_gamma": 0.1,
            "device": "cpu",
            "num_workers": 0,
            "amp": False,
            "channels_last": False,
            "rerank": True,
            # Common random numbers: measured to halve the SD of Table 4's paired differences (README,
            # "The study's precision", variance table); no measured harm elsewhere.
            "crn": True,
        },
        # All 10 splits of the small sets, paired, as the paper averages them (one seed each); the MARS-like
        # comparisons rest on seeds, five of them: what fits the 30-minute budget at 225 steps (README, "The
        # study's precision": the measured frontier; --seeds for more).
        splits={"mars": (0,), "ilidsvid": tuple(range(10)), "prid2011": tuple(range(10))},
        data="synthetic",
        seeds=(0, 1, 2, 3, 4),
        dataset_seeds={"ilidsvid": 1, "prid2011": 1},
        dataset_overrides={"ilidsvid": {"epochs": 3, "lr_step": 2}, "prid2011": {"epochs": 3, "lr_step": 2}},
    ),
    "paper": Profile(
        name="paper",
        description="paper §4.2: ResNet-50 ImageNet, 256x128, batch 16, T=8, 50 epochs, lr 1e-3 x0.1/15 epochs, "
        "real datasets, GPU; 10 splits for iLIDS-VID and PRID2011",
        overrides={
            "backbone": "resnet50",
            "pretrained": True,
            "height": 256,
            "width": 128,
            "batch_size": 16,
            "epochs": 50,
            "steps_per_epoch": 0,
            "lr": 1e-3,
            "lr_step": 15,
            "lr_gamma": 0.1,
            "device": "auto",
            "num_workers": 4,
            "rerank": True,
        },
        splits={"mars": (0,), "ilidsvid": tuple(range(10)), "prid2011": tuple(range(10))},
        data="real",
        seeds=(
            0,
        ),  # 74 GPU trainings per seed (the paper's 72 and Table 7's two); --seeds 0,1,2 for intervals over seeds
    ),
}


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One training: an experiment on one dataset split under one profile."""

    experiment: str
    dataset: str
    split: int
    config: Config
    run_dir: Path
    profile: str = field(default="quick", compare=False)
    overrides: dict = field(default_factory=dict, compare=False)  # --set / --config fields that apply to this run

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def result_path(self) -> Path:
        return run_folder.result(self.run_dir)

    def is_done(self) -> bool:
        """True when result.json exists *for this configuration* (a stale key does not count)."""
        return load_result(self.run_dir, self.config.key()) is not None


def load_result(run_dir: str | Path, key: str | None = None) -> dict | None:
    """The run's result dict, or None if missing, written for another configuration, or unreadable --
    an unreadable or malformed result.json is set aside (renamed, with a warning naming it) so that
    the run is redone instead of blocking every rerun."""
    from grl.utils import set_aside

    path = run_folder.result(run_dir)
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if path.is_file():
            set_aside(path, f"not a readable result ({type(exc).__name__}: {exc})")
        return None
    if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
        set_aside(path, "not a result of this project (no 'metrics' mapping)")
        return None
    if key is not None and result.get("key") != key:
        return None
    return result


def get_profile(name: str) -> Profile:
    check_name(name, PROFILES, "profile")
    return PROFILES[name]


def profile_dir(profile: str, root: str | Path | None = None) -> Path:
    """Where a profile's runs and report live: ``root`` if given, else reports/<profile>."""
    return Path(root) if root else reports_dir() / profile


def study_dir(profile: str, root: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Path | None:
    """The ``root`` of a study with ``overrides`` (--set / --config): ``root`` if given, else
    reports/<profile>-<field>=<value>,... so that a sweep never replaces the profile's own report; None (the
    profile's folder) without overrides."""
    if root or not overrides:
        return Path(root) if root else None
    return reports_dir() / f"{profile}-{overrides_tag(overrides)}"


def make_run(
    experiment: str,
    dataset: str,
    profile: str = "quick",
    *,
    split: int = 0,
    seed: int = 0,
    data_root: str = "",
    root: str | Path | None = None,
    run_dir: str | Path | None = None,
    recipe: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """Resolve one run: its Config and its folder runs/<experiment>-<dataset>-split<split>-seed<seed>-<key>, with
    ``-<field>=<value>,...`` before the key when there are ``overrides`` (--set / --config). An override of a field
    the experiment fixes itself (Table 4's seq_len, the Baseline's use_gce, ...) is refused: the run would no longer
    be that row."""
    check_name(experiment, EXPERIMENTS, "experiment")
    applied = dict(overrides or {})
    for name in sorted(set(applied) & set(EXPERIMENTS[experiment])):
        raise ConfigError(
            f"--set {name}: experiment {experiment!r} fixes {name}={EXPERIMENTS[experiment][name]!r} (that is what makes "
            f"its table row); drop the override, or select rows that do not vary {name} (--only)"
        )
    config = get_profile(profile).config(
        experiment, dataset, split=split, seed=seed, data_root=data_root, recipe=recipe, overrides=applied
    )
    if not run_dir:
        tag = f"{overrides_tag(applied)}-" if applied else ""
        name = f"{experiment}-{dataset}-split{split}-seed{seed}-{tag}{config.key()}"
        run_dir = profile_dir(profile, root) / "runs" / name
    return Run(experiment, dataset, split, config, Path(run_dir), profile, applied)


def parse_seeds(text: str | None, option: str = "--seeds") -> tuple[int, ...] | None:
    """ "0,1,2" -> (0, 1, 2); "0-3" -> (0, 1, 2, 3); "0-2,7" -> (0, 1, 2, 7); None/"" -> None (the profile's
    seeds). Distinct non-negative integers only."""
    if text is None or not str(text).strip():
        return None
    items = [t.strip() for t in str(text).split(",")]
    bounds = [t.split("-", 1) if "-" in t[1:] else [t] for t in items]
    if not all(len(b) in (1, 2) and all(x.strip().isdigit() for x in b) for b in bounds) or any(
        len(b) == 2 and int(b[0]) > int(b[1]) for b in bounds
    ):
        raise ConfigError(
            f"{option} must be a comma-separated list of distinct non-negative integers or ranges "
            f"such as 0,1,2 or 0-9; got {text!r}"
        )
    seeds = tuple(s for b in bounds for s in (range(int(b[0]), int(b[1]) + 1) if len(b) == 2 else [int(b[0])]))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{option} must list each seed once; got {text!r}")
    return seeds


def runs_for(
    profile: str,
    only: str | None = None,
    dataset: str | None = None,
    *,
    seeds: tuple[int, ...] | None = None,
    data_roots: dict[str, str] | None = None,
    root: str | Path | None = None,
    recipe: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[Run]:
    """The unique trainings behind the selected catalogue rows, once per seed (default: the profile's), with
    ``overrides`` (--set / --config) on each (:func:`make_run`).

    Ordered so an interrupted batch has the most useful results first: seed by seed (a whole
    study on the first seed before the second starts), and within a seed GRL and the Baseline
    on each dataset (Tables 1-2), then +GCE, then the MARS ablations in table order; splits innermost.
    """
    prof = get_profile(profile)
    # The profile's per-dataset seed counts belong to its own seeds; other seeds given explicitly train every dataset.
    per_dataset = prof.dataset_seeds if seeds is None or tuple(seeds) == prof.seeds else {}
    seeds = prof.seeds if seeds is None else tuple(seeds)
    if (
        not seeds
        or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ConfigError(f"seeds must be distinct non-negative integers, got {seeds!r}")
    data_roots = data_roots or {}
    for name in data_roots:
        check_name(name, DATASETS, "dataset")
    rows = select_rows(only, dataset)
    priority = {"grl": 0, "baseline": 1, "gce": 2}
    first_seen = {}
    for i, r in enumerate(rows):
        first_seen.setdefault((r.experiment, r.dataset), i)
    pairs = sorted(
        first_seen,
        key=lambda p: (priority.get(p[0], 3), DATASETS.index(p[1]) if p[0] in priority else 0, first_seen[p]),
    )
    runs: list[Run] = []
    seen_keys: set[str] = set()
    for index, seed in enumerate(seeds):
        for exp, ds in pairs:
            if index >= per_dataset.get(ds, len(seeds)):
                continue
            for split in prof.splits[ds]:
                run = make_run(
                    exp, ds, profile, split=split, seed=seed, data_root=data_roots.get(ds, ""), root=root, recipe=recipe,
                    overrides=overrides,
                )  # fmt: skip
                if run.config.key() not in seen_keys:  # two names for one configuration train once
                    seen_keys.add(run.config.key())
                    runs.append(run)
    return runs
