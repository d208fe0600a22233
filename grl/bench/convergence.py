"""Learning curves trained to the end, and the runs that diagnose the GRL-versus-Baseline gap.

``python -m grl.bench.convergence [GROUP ...] [--seeds 0-2] [--jobs 2] [--out DIR] [--no-train]
[--fields F,F] [--profile cpu]``

Trains (once; finished runs are reused, an interrupted one resumes from its last epoch) the arms of the named
groups at four times the ``cpu`` profile's length, evaluating the test set periodically **for the curve only**
(no model is ever selected on it: the number an arm is judged by is its last epoch's), then writes to DIR
(default ``reports/convergence``): ``curves.csv`` (every evaluation of every run), ``convergence.md`` (final
values with intervals over seeds, the paired comparisons of docs/convergence.md's hypotheses with Holm's
correction, the flattening check, the cost) and ``curves.png``.

Groups: refs (Baseline, GRL, GRL with the release recipe), screen (paper mode + one release field, seed 0
only unless --seeds says otherwise), stage2 / release-off (the fields given by --fields, switched on in paper
mode / off in the release recipe), losses, backbone (GRL on the same seed's trained Baseline backbone,
frozen or trained on), rule (Baseline and GRL under the recipe rule), double / quad (the rule's arms at twice / four
times the steps), cosine / cosine-x4 (the rule's arms at twice / four times the steps with the cosine schedule), calibrate
(the Baseline at 3600 steps on MARS-like data of each candidate camera strength, docs/study.md), tables (every arm of Tables 3-6 under the rule), resolution (128x64, paper mode), small (Baseline, +GCE
and GRL under the rule on two splits of each small set). The hypotheses and the rules that judge these runs are in docs/convergence.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from grl import run_folder
from grl.bench.convergence_analysis import load_curves, write_outputs
from grl.config import RECIPES, Config

MARS_LENGTH = {"epochs": 36, "lr_step": 24, "eval_every": 4}  # 900 steps: 4x the cpu profile's, drop at 2/3
DOUBLE_LENGTH = {"epochs": 72, "lr_step": 48, "eval_every": 8}  # 1800 steps, the same shape: does 900 suffice?
QUAD_LENGTH = {"epochs": 144, "lr_step": 96, "eval_every": 16}  # 3600 steps: does 1800 suffice?
EIGHT_LENGTH = {"epochs": 288, "lr_step": 192, "eval_every": 32}  # 7200 steps: does 3600 suffice on new data?
SIXTEEN_LENGTH = {"epochs": 576, "lr_step": 384, "eval_every": 64}  # 14,400 steps: does 7200 suffice?
SMALL_LENGTH = {"epochs": 12, "lr_step": 8, "eval_every": 3}  # 300 steps: 4x the small sets' 75
SMALL_HALF = {"epochs": 6, "lr_step": 4, "eval_every": 1}  # 150 steps: does 150 suffice on the small sets?
SMALL_DOUBLE = {"epochs": 24, "lr_step": 16, "eval_every": 6}  # 600 steps: does 300 suffice?
# The curves' evaluations skip re-ranking (an extra evaluation of the same model, not part of any question here)
# and each run trains on one thread (two runs share the two cores).
COMMON = {"rerank": False, "threads": 1}

# The release recipe's fields that change what is trained, each with its release value: release_feature,
# select_best and eval_every change only what is measured or kept; gce_lr_as_backbone changes nothing in paper mode,
# where every layer learns at the backbone's rate.
RELEASE_FIELDS = {
    k: v
    for k, v in RECIPES["release"].items()
    if k not in ("release_feature", "select_best", "eval_every", "gce_lr_as_backbone")
}
# "Paper mode" of docs/convergence.md is the paper's text with our reading where it is silent (the `paper` recipe
# before the recipe rule), pinned field by field so that its runs keep their keys.
PAPER_TEXT = dict(RECIPES["paper-text"])
PAPER_VALUES = {
    f.name: PAPER_TEXT.get(f.name, f.default) for f in dataclasses.fields(Config) if f.name in RELEASE_FIELDS
}
RULE_FIELDS = ("lambda_veri", "erasing", "pool_normalized", "pool_bn_halves")  # the rule's departures from paper mode
RELEASE = {"recipe": "release", "select_best": False}  # never test-set selection
# docs/fidelity.md, "The recipe rule": the paper where its text is explicit, the release where it is silent
RULE = {f: RELEASE_FIELDS[f] for f in RULE_FIELDS}
TABLE_ARMS = (
    "gce",
    "grl-no-memory",
    "grl-no-enhancement",
    "grl-T4",
    "grl-T6",
    "grl-T10",
    "grl-forward",
    "grl-backward",
    "grl-v-oim",
    "grl-f-oim",
)


# docs/study.md, "Recalibrated for the study at convergence": the MARS-like cameras' strengths screened (seed 0).
CALIBRATION_STRENGTHS = (0.5, 1.0, 2.0, 1.5)
CALIBRATION_CANDIDATE = 1.5  # the screened strength in range (docs/study.md, line 16): run on seeds 1 and 2


def calibration_data(strength: float) -> dict:
    """Config fields of the built-in MARS-like set generated at ``camera_strength`` (the rest of the `full`
    preset), under data/calibration/ (generated here, once): read as a data root, with its own data version
    so that its frame cache is its own."""
    from grl.data import synthetic
    from grl.paths import data_dir

    sizes = {**synthetic.preset_sizes("full", "mars"), "camera_strength": strength}
    root = data_dir() / "calibration" / f"mars-cameras-{strength:g}"
    synthetic.ensure_synthetic("mars", root=root, **sizes)
    return {"data_root": str(root), "data_version": synthetic.data_version("mars", **sizes)}


def arms(group: str, fields: tuple[str, ...] = ()) -> list[tuple[str, str, str, dict]]:
    """(dataset, arm name, catalogue experiment, config overrides) of one group."""
    if group == "refs":
        return [
            ("mars", "baseline", "baseline", PAPER_TEXT),
            ("mars", "grl", "grl", PAPER_TEXT),
            ("mars", "release", "grl", RELEASE),
        ]
    if group == "baseline-release":
        return [("mars", "baseline-release", "baseline", RELEASE)]
    if group == "screen":
        return [("mars", f"grl+{f}", "grl", {**PAPER_TEXT, f: v}) for f, v in RELEASE_FIELDS.items()]
    if group == "stage2":
        return [("mars", f"grl+{f}", "grl", {**PAPER_TEXT, f: RELEASE_FIELDS[f]}) for f in fields]
    if group == "release-off":
        return [("mars", f"release-{f}", "grl", {**RELEASE, f: PAPER_VALUES[f]}) for f in fields]
    if group == "rule":
        return [("mars", "baseline-rule", "baseline", RULE), ("mars", "grl-rule", "grl", RULE)]
    if group == "double":  # the same arms at twice the steps (docs/convergence.md, "Twice the steps")
        return [(ds, f"{arm}-x2", exp, {**o, **DOUBLE_LENGTH}) for ds, arm, exp, o in arms("rule")]
    if group == "quad":  # four times the steps (docs/convergence.md, "Four times the steps")
        return [(ds, f"{arm}-x4", exp, {**o, **QUAD_LENGTH}) for ds, arm, exp, o in arms("rule")]
    if group == "calibrate":  # the Baseline alone at 3600 steps on MARS-like data of each candidate camera strength
        return [
            (
                "mars",
                f"baseline-rule-x4-cameras{strength:g}",
                "baseline",
                {**RULE, **QUAD_LENGTH, **calibration_data(strength)},
            )
            for strength in CALIBRATION_STRENGTHS
        ]
    if group == "calibrate-candidate":
        return [a for a in arms("calibrate") if a[1].endswith(f"-cameras{CALIBRATION_CANDIDATE:g}")]
    if group == "calibrated-length":  # the doubling rule again on the kept data (docs/convergence.md)
        return _on_kept_data("x4", QUAD_LENGTH) + _on_kept_data("x8", EIGHT_LENGTH)
    if group == "calibrated-x16":  # the doubling rule at the next length: 7200 against 14,400 steps, the Baseline first
        return _on_kept_data("x16", SIXTEEN_LENGTH)
    if group == "calibrated-half":  # the shortest length that passes: 1800 steps on the kept data
        return _on_kept_data("x2", DOUBLE_LENGTH)
    if group == "small-half":  # the small sets' own length (docs/convergence.md): 150 and 600 beside 300 steps
        return [(ds, f"{arm}-half", exp, {**o, **SMALL_HALF}) for ds, arm, exp, o in arms("small")]
    if group == "small-double":
        return [(ds, f"{arm}-x2", exp, {**o, **SMALL_DOUBLE}) for ds, arm, exp, o in arms("small")]
    if group == "cosine-x4":  # H7's length rule: the cosine schedule at four times the steps
        return [
            (ds, f"{arm}-cos-x4", exp, {**o, **QUAD_LENGTH, "lr_schedule": "cosine"})
            for ds, arm, exp, o in arms("rule")
        ]
    if group == "cosine":  # the cosine schedule at twice the steps (docs/convergence.md, H7)
        return [
            (ds, f"{arm}-cos-x2", exp, {**o, **DOUBLE_LENGTH, "lr_schedule": "cosine"})
            for ds, arm, exp, o in arms("rule")
        ]
    if group == "backbone":  # started from the same seed's trained Baseline (run the refs group first)
        return [
            (
                "mars",
                "grl-on-frozen-baseline",
                "grl",
                {**PAPER_TEXT, "freeze_backbone": True, "backbone_from": "baseline"},
            ),
            ("mars", "grl-from-baseline", "grl", {**PAPER_TEXT, "backbone_from": "baseline"}),
        ]
    if group == "losses":
        return [
            ("mars", "grl-v-oim", "grl-v-oim", PAPER_TEXT),
            ("mars", "grl-f-oim", "grl-f-oim", PAPER_TEXT),
            ("mars", "grl-no-verification", "grl", {**PAPER_TEXT, "use_verification": False}),
        ]
    if group == "tables":  # under the recipe rule, compared with grl-rule
        return [("mars", f"{arm}-rule", arm, RULE) for arm in TABLE_ARMS]
    if group == "resolution":
        size = {**PAPER_TEXT, "height": 128, "width": 64}
        return [("mars", "baseline-128x64", "baseline", size), ("mars", "grl-128x64", "grl", size)]
    if group == "small":
        return [(ds, f"{a}-rule", a, RULE) for ds in ("ilidsvid", "prid2011") for a in ("baseline", "gce", "grl")]
    raise ValueError(f"unknown group {group!r}; choose from {', '.join(GROUPS)}")


def _on_kept_data(x: str, length: dict) -> list[tuple[str, str, str, dict]]:
    """The rule's arms at ``length`` on the MARS-like data kept by the recalibration (named ``<arm>-<x>-cameras1.5``)."""
    data = calibration_data(CALIBRATION_CANDIDATE)
    return [
        (ds, f"{arm}-{x}-cameras{CALIBRATION_CANDIDATE:g}", exp, {**o, **length, **data})
        for ds, arm, exp, o in arms("rule")
    ]


GROUPS = (
    "refs",
    "screen",
    "stage2",
    "release-off",
    "losses",
    "backbone",
    "rule",
    "double",
    "quad",
    "cosine",
    "cosine-x4",
    "calibrate",
    "calibrate-candidate",
    "calibrated-length",
    "calibrated-half",
    "calibrated-x16",
    "small-half",
    "small-double",
    "baseline-release",
    "tables",
    "resolution",
    "small",
)


def planned_runs(
    groups, seeds, fields=(), profile: str = "cpu", screen_seeds=(0,), root="reports/convergence"
) -> list[tuple[str, dict]]:
    """(run name, Config dict) of every run of the groups, in the order given; small sets on splits 0 and 1. A
    ``backbone_from`` arm names the same seed's run of that arm under ``root``."""
    from grl.experiments import PROFILES

    prof = PROFILES[profile]
    out, seen = [], set()
    for group in groups:
        for dataset, arm, experiment, overrides in arms(group, fields):
            length = MARS_LENGTH if dataset == "mars" else SMALL_LENGTH
            splits = (0,) if dataset == "mars" else (0, 1)
            for seed in screen_seeds if group == "screen" else seeds:
                for split in splits:
                    recipe = overrides.get("recipe")
                    extra = {k: v for k, v in overrides.items() if k != "recipe"}
                    if "backbone_from" in extra:
                        extra["backbone_from"] = str(
                            Path(root) / "runs" / f"{dataset}-{extra['backbone_from']}-s{seed}"
                        )
                    config = prof.config(experiment, dataset, split=split, seed=seed, recipe=recipe)
                    config = config.replace(**{**COMMON, **length, **extra})
                    name = f"{dataset}-{arm}-s{seed}" + (f"-split{split}" if dataset != "mars" else "")
                    if name not in seen:
                        seen.add(name)
                        out.append((name, config.to_dict()))
    return out


def train_one(name: str, values: dict, root: str) -> str:
    """Train one run (or reuse / resume it), then evaluate GRL's own F^g of the last epoch's model (eq. 1, the
    Baseline's test feature; docs/convergence.md H2) into ``final_g.json``. In a one-thread worker."""
    import json

    import torch

    torch.set_num_threads(1)
    from grl.config import Config
    from grl.data import load_config_dataset
    from grl.engine import train
    from grl.engine.features import encode_test_set, load_run
    from grl.evaluation import evaluate_ranking
    from grl.utils import atomic_write_json

    config = Config.from_dict(values)
    run_dir = Path(root) / "runs" / name
    extra = run_folder.final_g(run_dir)
    if extra.is_file() and json.loads(extra.read_text()).get("key") == config.key():
        return name
    if config.backbone_from and not run_folder.has_model(config.backbone_from):
        raise FileNotFoundError(
            f"{name}: {config.backbone_from} has not finished (no {run_folder.MODEL}); run its group first"
        )
    dataset = load_config_dataset(config)
    train(config, run_dir, progress=False, dataset=dataset)
    if config.use_gce:
        _, model = load_run(run_dir)
        test = encode_test_set(model, dataset, config, features=("g",))
        metrics = evaluate_ranking(test.distance("g"), *test.ids())
        atomic_write_json(extra, {"key": config.key(), "g": {k: metrics[k] for k in ("mAP", "rank1")}})
    else:
        atomic_write_json(extra, {"key": config.key()})
    return name


def train_all(runs: list[tuple[str, dict]], root: Path, jobs: int) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    from grl.batch.shared import prepare_shared
    from grl.config import Config

    configs = [Config.from_dict(v) for _, v in runs]
    prepare_shared([SimpleNamespace(config=c, split=c.split) for c in configs], jobs=jobs)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    failed = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(train_one, name, values, str(root)): name for name, values in runs}
        for future in tqdm(as_completed(futures), total=len(futures), desc="convergence runs", file=sys.stderr):
            try:
                print(f"done: {future.result()}", flush=True)
            except Exception as exc:  # one failed run must not stop the others; it is listed at the end
                failed.append(futures[future])
                print(f"FAILED: {futures[future]}: {exc}", file=sys.stderr, flush=True)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)


def _range(text: str) -> tuple[int, ...]:
    values: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        values.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grl.bench.convergence", description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"which runs: {', '.join(GROUPS)} (default refs)")
    parser.add_argument("--seeds", default="0-2", help="training seeds, e.g. 0-2 or 0,3 (default 0-2)")
    parser.add_argument("--screen-seeds", default="0", help="seeds of the screen group (default 0)")
    parser.add_argument(
        "--fields", default="", help="release fields of the stage2 / release-off groups, e.g. oim_pooled"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once, one thread each")
    parser.add_argument("--out", default="reports/convergence", help="output folder (runs/ inside)")
    parser.add_argument("--profile", default="cpu", help="the profile scaled (cpu; quick for a smoke test)")
    parser.add_argument("--no-train", action="store_true", help="only analyse the runs already finished")
    args = parser.parse_args(argv)
    fields = tuple(f for f in args.fields.split(",") if f)
    unknown = [g for g in args.groups if g not in GROUPS] + [f for f in fields if f not in RELEASE_FIELDS]
    if unknown:
        parser.error(f"unknown group(s) or field(s) {unknown}; groups: {GROUPS}; fields: {tuple(RELEASE_FIELDS)}")
    groups = tuple(args.groups) or ("refs",)
    root = Path(args.out)
    runs = planned_runs(groups, _range(args.seeds), fields, args.profile, _range(args.screen_seeds), root)
    if not args.no_train:
        train_all(runs, root, max(1, args.jobs))
    frame = load_curves(root)
    if frame is None:
        print(f"no finished evaluation under {root / 'runs'} yet", file=sys.stderr)
        return 1
    write_outputs(frame, root)
    print(f"wrote {root / 'convergence.md'}, {root / 'curves.csv'}, {root / 'curves.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
