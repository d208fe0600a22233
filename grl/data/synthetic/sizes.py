"""Dataset names and size parameters: the defaults of each synthetic dataset and their validation."""

from __future__ import annotations

from typing import Any

DATASETS = ("mars", "ilidsvid", "prid2011")

# What each generator draws by default; ``generate(name, ..., **sizes)`` overrides any of them.
DEFAULT_SIZES: dict[str, dict[str, Any]] = {
    "mars": dict(
        num_train_ids=150,
        num_test_ids=150,
        num_cams=6,
        min_cams_per_id=2,
        max_cams_per_id=3,
        max_tracklets_per_cam=2,
        min_len=8,
        max_len=40,
        num_distractors=40,
        num_junk=12,
        group_size=4,
        camera_strength=0.1,  # calibrated on the Baseline (README, "Calibrating")
        height=128,
        width=64,
    ),
    "ilidsvid": dict(
        num_ids=100, min_len=23, max_len=60, num_splits=10, group_size=4, camera_strength=1.0, height=128, width=64
    ),
    "prid2011": dict(
        num_cam_a=120,
        num_cam_b=160,
        num_both=100,
        min_len=22,
        max_len=60,
        short_fraction=0.1,
        num_splits=10,
        write_splits=True,
        group_size=4,
        camera_strength=1.0,
        height=128,
        width=64,
    ),
}


# Named sizes a Config refers to (Config.data_size): "full" are the defaults; "small" sets make evaluation and
# first-time generation take seconds (the quick profile: tests, nbval, CI's fresh clone).
SIZE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The default study's MARS-like cameras at 0.2 of their native strength: recalibrated on the Baseline for the
    # 225-step cpu profile (README, "Calibrating", line 10). The small preset keeps 0.1, so the quick profile's
    # data, and every number nbval checks, are unchanged.
    "full": {"mars": dict(camera_strength=0.2), "ilidsvid": {}, "prid2011": {}},
    "small": {
        "mars": dict(num_train_ids=24, num_test_ids=24, max_len=24, num_distractors=8, num_junk=4, height=64, width=32),
        "ilidsvid": dict(num_ids=32, max_len=32, height=64, width=32),
        "prid2011": dict(num_cam_a=32, num_cam_b=40, num_both=28, max_len=32, height=64, width=32),
    },
}


def preset_sizes(preset: str, name: str) -> dict[str, Any]:
    """The size overrides of dataset ``name`` in :data:`SIZE_PRESETS` [preset]."""
    if preset not in SIZE_PRESETS:
        raise ValueError(f"unknown synthetic size preset {preset!r}; valid: {', '.join(SIZE_PRESETS)}")
    return dict(SIZE_PRESETS[preset][check_name(name)])


def check_name(name: str) -> str:
    """``name`` if it is one of :data:`DATASETS`; otherwise ValueError listing them."""
    if name not in DATASETS:
        raise ValueError(f"unknown synthetic dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return name


def resolve_sizes(name: str, **sizes) -> dict:
    """The defaults for ``name`` updated with ``sizes``; unknown keys raise ValueError listing valid ones."""
    defaults = DEFAULT_SIZES[check_name(name)]
    unknown = sorted(set(sizes) - set(defaults))
    if unknown:
        raise ValueError(f"unknown size parameter(s) {unknown} for synthetic {name!r}; valid: {sorted(defaults)}")
    out = dict(defaults)
    for k, v in sizes.items():
        out[k] = type(defaults[k])(v)
    if out.get("min_len", 1) > out.get("max_len", 1) or out.get("min_len", 1) < 1:
        raise ValueError(f"synthetic {name!r}: need 1 <= min_len <= max_len, got {out['min_len']}..{out['max_len']}")
    if name == "mars" and not 2 <= out["min_cams_per_id"] <= out["max_cams_per_id"] <= out["num_cams"]:
        raise ValueError("synthetic 'mars': need 2 <= min_cams_per_id <= max_cams_per_id <= num_cams")
    return out


# The calibration targets (docs/study.md, "Calibrating the built-in benchmark"): the Baseline's F^g, mean over
# the seeds, in these ranges (per cent).
CALIBRATION_TARGETS = {
    ("mars", "rank1"): (30, 70),
    ("mars", "mAP"): (30, 70),
    ("ilidsvid", "rank1"): (40, 85),
    ("prid2011", "rank1"): (40, 85),
}
