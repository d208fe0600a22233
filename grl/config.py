"""The one configuration of a GRL run.

Every switch of the paper's ablations (Tables 2-6), every data protocol choice and
every optimisation setting is a field of :class:`Config`. A run is keyed by its
configuration (:meth:`Config.key`), so two table rows that need the same training
share one run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DATASETS = ("mars", "ilidsvid", "prid2011")  # the study's (the paper's tables)
# Read in their real layouts for train / evaluate / extract, not in the paper's tables (grl.data.extra_datasets).
EXTRA_DATASETS = ("dukemtmcvidreid", "lsvid")
BACKBONES = ("resnet50", "resnet18", "tiny")
DIRECTIONS = ("forward", "backward", "both")
INTEGRATIONS = ("paper", "release")
OIM_LEVELS = ("v", "f", "v+f")
TEST_SAMPLINGS = ("rrs", "dense")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("step", "cosine")
DTYPES = ("float32", "float64")
RECIPES_NAMES = ("paper", "paper-text", "release")
RRS_CHUNKS = ("balanced", "ceil")
ERASINGS = ("clip", "frame")
GCE_HEADS = ("paper", "release")
DATA_SIZES = ("full", "small")

# The authors' release departs from the paper's text in these fields; `recipe="release"` sets them all
# (Config.from_dict), and each stays a field of its own. The default, "paper", follows the recipe rule of
# docs/fidelity.md: the paper where its text is explicit, the release where the text is silent or vague (the
# verification weight, the erasing, the pooling's normalisation and BN). "paper-text" takes our own reading
# where the text is silent instead (the `paper` recipe before the rule).
RECIPES: dict[str, dict] = {
    "paper": {},
    "paper-text": {"lambda_veri": 1.0, "erasing": "clip", "pool_normalized": False, "pool_bn_halves": False},
    "release": {
        "integration": "release",  # eq. 9-10 as a sum + BN instead of an FC over the concatenation
        "lambda_veri": 20.0,  # verification loss weight
        "new_layer_lr_mult": 2.0,  # layers outside the backbone at lr x2
        "rrs_chunks": "ceil",  # RRS chunks of ceil(n/T) frames, padded with the last frame
        "random_crop": False,
        "erasing": "frame",  # per frame, random colour, 2-20 % of the area
        "gce_head": "release",  # biased Linear; three 1x1 convs, no ReLU between the first two; final BN
        "pool_normalized": True,  # attentive pooling of L2-normalised F^h_t
        "pool_bn_halves": True,  # attentive-pooling BN statistics from each half of the batch in training
        "oim_pooled": True,  # an extra OIM on the pooled F^h with the frame-level lookup table
        "gce_lr_as_backbone": True,  # GCE in the backbone's parameter group (lr x1 where new layers get x2)
        "release_feature": True,  # also evaluate concat(F^l, pooled F^h, mean_t F^h)
        "select_best": True,  # keep the model at the best test-set Rank-1 (test-set selection!)
        "eval_every": 5,
    },
}

# Fields that change neither what is trained nor what is measured: left out of the key (data_size is
# in it through data_version, the id of the generated data).
# `threads` is left out too: with float32 it moves the last digits (which the seeds' confidence
# intervals cover), and the float64 profiles pin it, so it never decides what a run is.
# eval_every is in the key only with select_best, where it decides which model is kept. rerank adds an
# evaluation of the same trained model (runs finished before it was asked for do not have it).
_NOT_IN_KEY = frozenset(
    {
        "num_workers",
        "frame_cache",
        "data_size",
        "device",
        "data_root",
        "eval_every",
        "threads",
        "rerank",
        "divergence_factor",
    }  # fmt: skip
)
# Fields added after runs were first keyed: left out of the key while at their first default, so that adding a
# switch does not invalidate every finished run. A default changed later is keyed against the value it replaced
# (_FIRST_DEFAULTS), so a run at the new default never takes the key of a run at the old one.
_KEY_OMITS_DEFAULT = frozenset(
    "pretrain_ids pretrain_steps recipe rrs_chunks random_crop erasing gce_head pool_normalized pool_bn_halves"
    " oim_pooled release_feature select_best sync_bn crn backbone_from freeze_backbone gce_lr_as_backbone"
    " lr_schedule".split()
)
_FIRST_DEFAULTS = {"erasing": "clip", "pool_normalized": False, "pool_bn_halves": False}  # before the recipe rule


class ConfigError(ValueError):
    """A configuration value or name that is not allowed; the message names the field."""


@dataclass(frozen=True)
class Config:
    # --- data (paper §4.1-4.2) ---
    dataset: str = "mars"
    data_root: str = ""  # "" = the built-in synthetic dataset under data/synthetic/<dataset>
    data_version: str = ""  # id of the generated data (grl.data.synthetic.data_version); "" for real data
    data_size: str = "full"  # built-in sets' size preset (grl.data.synthetic.SIZE_PRESETS): "full" | "small"
    split: int = 0  # iLIDS-VID / PRID2011 split index (0..9)
    ilidsvid_test_first: bool = True  # common convention; False = the authors' release
    mars_gallery_includes_queries: bool = True  # the authors' release convention
    seq_len: int = 8  # T
    height: int = 256
    width: int = 128
    batch_size: int = 16  # tracklets; half random, half same-id partners from another camera
    test_sampling: str = "rrs"  # "rrs" (first frame per chunk) or "dense" (all frames)
    num_workers: int = 0
    # Read the built-in synthetic sets' frames from a decoded, resized cache (grl.data.frame_cache): the same
    # clips bit for bit, without decoding a file per frame per step. Real data are always decoded.
    frame_cache: bool = True
    # --- model (paper §3) ---
    backbone: str = "resnet50"
    pretrained: bool = True  # ImageNet weights; see grl.models.backbone for where they come from
    # The tiny backbone's pretraining on synthetic people (grl.models.pretrain), when pretrained=True.
    pretrain_ids: int = 600
    pretrain_steps: int = 1200
    use_gce: bool = True  # eq. 2-4; off = the Baseline (F^g only)
    use_trl: bool = True  # eq. 5-10; off = "+GCE" row of Table 2
    use_memory: bool = True  # eq. 8; off = "- Memory Block" (M_t = M_0)
    use_enhancement: bool = True  # eq. 5-7; off = "- Enhancement Block" (a_t = 0)
    direction: str = "both"  # Table 5
    integration: str = "paper"  # "paper": FC over concat (eq. 9-10); "release": sum + BN + L2
    # --- losses (eq. 11-14) ---
    oim: str = "v+f"  # Table 6: video-level, frame-level or both
    oim_scale: float = 30.0
    oim_momentum: float = 0.5
    lambda_frame: float = 1.0  # lambda_1
    lambda_video: float = 1.0  # lambda_2
    lambda_veri: float = 20.0  # lambda_3; the paper gives no value: the release's (docs/fidelity.md)
    use_verification: bool = True
    use_triplet: bool = False  # the release's extra soft-margin triplet (not in the paper)
    # --- optimisation (paper §4.2) ---
    optimizer: str = "sgd"  # the paper's SGD+Nesterov; "adam" for the from-scratch CPU profiles
    epochs: int = 50
    steps_per_epoch: int = 0  # 0 = one pass over the paired sampler
    lr: float = 1e-3
    new_layer_lr_mult: float = 1.0  # the release uses 2.0 for layers outside the backbone
    weight_decay: float = 5e-4
    momentum: float = 0.9  # Nesterov
    lr_step: int = 15
    lr_gamma: float = 0.1
    lr_schedule: str = "step"  # "step": × lr_gamma every lr_step epochs; "cosine": annealed to 0 over the run
    eval_every: int = 0  # 0 = evaluate only at the end
    # The divergence guard: training stops within one step when any loss term becomes non-finite or exceeds this
    # multiple of its first-epoch mean (of its first step's value during the first epoch; 0 = the multiple off).
    divergence_factor: float = 1000.0
    seed: int = 0
    # Common random numbers (variance reduction for paired comparisons, README "The study's precision"): the
    # new layers' initial weights come from a stream per layer name, and a clip's frames and augmentation from
    # separate streams, so two arms of an ablation differ only where their configurations do.
    crn: bool = False
    device: str = "auto"
    amp: bool = True  # CUDA only
    channels_last: bool = True  # CUDA only
    # BatchNorm statistics over the global batch when several processes train one run (torchrun); off as in
    # the release, where each GPU normalises its own share. No effect in a single process.
    sync_bn: bool = False
    # --- arithmetic (what makes a run's numbers portable across CPUs; README "What is identical where") ---
    dtype: str = "float32"  # "float64": the quick profile, identical on every x86-64 CPU
    threads: int = 0  # torch threads while training / evaluating; 0 = leave torch's setting alone
    # --- the authors' release (RECIPES["release"]; every field below defaults to the recipe rule's value) ---
    recipe: str = "paper"  # "release" / "paper-text": every choice of RECIPES[recipe] at once (Config.from_dict)
    rrs_chunks: str = "balanced"  # RRS chunk sizes: "balanced" (differ by <= 1) | "ceil" (release)
    random_crop: bool = True  # zero-pad + random crop in training (the release has none)
    erasing: str = "frame"  # "frame" (release): per frame, random colour, 2-20 % | "clip": one box per clip, 2-40 %
    gce_head: str = "paper"  # W_r as the paper describes it (two 1x1 convs) | "release" (three)
    pool_normalized: bool = True  # attentive pooling over L2-normalised F^h_t (release)
    pool_bn_halves: bool = True  # pooling BN statistics per half batch in training (release)
    oim_pooled: bool = False  # extra OIM on the pooled F^h with the frame-level table (release)
    gce_lr_as_backbone: bool = False  # GCE's layers learn at the backbone's lr, not new_layer_lr_mult's (release)
    release_feature: bool = False  # also test with concat(F^l, pooled F^h, mean_t F^h) ("l+h+mean")
    select_best: bool = False  # keep the best test-set Rank-1 of the periodic evaluations (release)
    # --- the backbone question of docs/convergence.md: GRL's heads on another run's trained backbone ---
    backbone_from: str = ""  # a finished run folder (or its model.pt) whose backbone weights start this run's
    freeze_backbone: bool = False  # the backbone is not trained (no gradient, BatchNorm statistics frozen)
    # --- evaluation ---
    rerank: bool = False  # also evaluate the main feature with k-reciprocal re-ranking ("h+l+rerank")

    def __post_init__(self) -> None:
        choices = {
            "dataset": DATASETS + EXTRA_DATASETS,
            "backbone": BACKBONES,
            "direction": DIRECTIONS,
            "integration": INTEGRATIONS,
            "oim": OIM_LEVELS,
            "test_sampling": TEST_SAMPLINGS,
            "optimizer": OPTIMIZERS,
            "lr_schedule": LR_SCHEDULES,
            "dtype": DTYPES,
            "recipe": RECIPES_NAMES,
            "rrs_chunks": RRS_CHUNKS,
            "erasing": ERASINGS,
            "gce_head": GCE_HEADS,
            "data_size": DATA_SIZES,
        }
        for f in fields(self):
            value = getattr(self, f.name)
            expected = _field_type(f)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
                continue
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(
                    f"config field {f.name!r} must be {expected.__name__}, got {value!r} ({type(value).__name__})"
                )
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"config field {name!r} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        for name in ("seq_len", "height", "width", "batch_size", "epochs", "pretrain_ids", "pretrain_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config field {name!r} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % 2:
            raise ConfigError(
                f"config field 'batch_size' must be even (half probes, half partners), got {self.batch_size}"
            )
        if self.use_trl and not self.use_gce:
            raise ConfigError("use_trl=True needs use_gce=True: TRL works on the features GCE disentangles")
        if not self.use_gce and self.oim != "v":
            raise ConfigError(f"oim={self.oim!r} needs use_gce=True: the Baseline has only the video-level OIM on F^g")
        if self.threads < 0:
            raise ConfigError(f"config field 'threads' must be >= 0 (0 = torch's default), got {self.threads}")
        if self.seed < 0:
            raise ConfigError(f"config field 'seed' must be >= 0, got {self.seed}")
        if not self.divergence_factor >= 0:
            raise ConfigError(
                f"config field 'divergence_factor' must be >= 0 (0 = only non-finite losses stop a run), "
                f"got {self.divergence_factor}"
            )
        if self.select_best and self.eval_every < 1:
            raise ConfigError(
                "select_best=True needs eval_every >= 1: the best model is chosen among the periodic evaluations"
            )
        if self.freeze_backbone and not self.use_gce:
            raise ConfigError("freeze_backbone=True needs use_gce=True: the Baseline trains nothing but its backbone")
        if not 0 <= self.split <= 9:
            raise ConfigError(f"config field 'split' must be in 0..9, got {self.split}")

    # ---- construction -------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """Build from a plain dict, refusing unknown keys by name.

        ``recipe`` fills in its choices (RECIPES) for every field the dict does not give itself."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {sorted(known)}")
        recipe = values.get("recipe", "paper")
        if recipe not in RECIPES:
            raise ConfigError(f"config field 'recipe' must be one of {list(RECIPES)}, got {recipe!r}")
        return cls(**{**RECIPES[recipe], **values})

    def replace(self, **changes: Any) -> "Config":
        """A copy with ``changes``; a new ``recipe`` brings its own choices for the fields not changed."""
        values = self.to_dict()
        if changes.get("recipe", self.recipe) != self.recipe:
            old = {**_paper_values(), **RECIPES[self.recipe]}
            values = {k: v for k, v in values.items() if k not in old or v != old[k]}  # keep only deliberate choices
        return Config.from_dict({**values, **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- identity -----------------------------------------------------
    def key(self) -> str:
        """Short stable hash of everything that changes the trained model or its numbers."""
        defaults = {**{f.name: f.default for f in fields(self)}, **_FIRST_DEFAULTS}
        payload = {
            k: v
            for k, v in self.to_dict().items()
            if (k not in _NOT_IN_KEY or (k == "eval_every" and self.select_best))
            and not (k in _KEY_OMITS_DEFAULT and v == defaults[k])
        }
        if payload.get("oim_pooled"):
            # Before 2026-12-07 the pooled OIM scored against the frame-level table already updated with this
            # step's frames (docs/fidelity.md): a new value keeps such runs from being reused for the fixed model.
            payload["oim_pooled"] = "pre-update table"
        if payload.get("pool_normalized"):
            # Runs trained before the pooling's query and key read the normalised F^h too (docs/fidelity.md, "Changed on 2026-12-04") had
            # `true` here: a new value gives the corrected model a new key, so old runs are never reused.
            payload["pool_normalized"] = "query+key+values"
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    @property
    def test_features(self) -> tuple[str, ...]:
        """The test features this model is evaluated with (Table 2's "Feat. to test", and the release's)."""
        if not self.use_gce:
            return ("g",)
        return ("l", "h", "h+l") + (("l+h+mean",) if self.release_feature else ())

    @property
    def main_feature(self) -> str:
        """The feature the paper's GRL rows are tested with (and select_best ranks by)."""
        return "g" if not self.use_gce else "h+l"


def _paper_values() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Config) if f.name in RECIPES["release"]}


def _field_type(f: dataclasses.Field) -> type:
    # `from __future__ import annotations` makes f.type a string.
    return {"str": str, "int": int, "float": float, "bool": bool}[str(f.type)]


# ---- overrides: --set KEY=VALUE and --config FILE -------------------------------------------------------------
# Fields that have options of their own (or are derived), so an override would hide what a run is.
OWN_OPTIONS = {
    "dataset": "--dataset",
    "split": "--split",
    "seed": "--seed / --seeds",
    "data_root": "--data-root",
    "recipe": "--recipe",
    "data_version": "nothing: it is derived from the data",
}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def coerce_field(name: str, value: Any, source: str = "--set") -> Any:
    """``value`` (text from ``--set``, or a YAML value) as config field ``name``'s type; a ConfigError naming the
    source, the key, the value and what is allowed (with the closest field names for an unknown key)."""
    import difflib

    types = {f.name: _field_type(f) for f in fields(Config)}
    if name not in types:
        close = difflib.get_close_matches(name, list(types), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            f"{source} {name}: unknown config field {name!r}; {hint}the fields are listed in grl/config.py"
        )
    if name in OWN_OPTIONS:
        raise ConfigError(f"{source} {name}: {name!r} is not set this way; use {OWN_OPTIONS[name]}")
    expected = types[name]
    wrong = ConfigError(f"{source} {name}={value!r}: config field {name!r} takes {_EXAMPLES[expected]}, got {value!r}")
    if isinstance(value, str) and expected is not str:
        text = value.strip().lower()
        if expected is bool:
            if text not in _TRUE + _FALSE:
                raise wrong
            return text in _TRUE
        try:
            return int(text) if expected is int else float(text)
        except ValueError:
            raise wrong from None
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise wrong
    return value


_EXAMPLES = {bool: "true or false", int: "an integer (e.g. 10)", float: "a number (e.g. 0.0001)", str: "a word"}


def parse_overrides(items: Any = (), config_file: str | Path | None = None) -> dict[str, Any]:
    """Config fields from ``--config FILE`` (a YAML mapping), then from each ``--set KEY=VALUE`` (a later value wins),
    each parsed to its field's type. The whole configuration is checked when a run's Config is built."""
    values: dict[str, Any] = {}
    if config_file:
        import yaml

        path = Path(config_file)
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config {path}: not valid YAML ({' '.join(str(exc).split())})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"--config {path}: expected a mapping of config fields (lr: 0.0001), got {type(loaded).__name__}"
            )
        for name, value in loaded.items():
            values[str(name)] = coerce_field(str(name), value, source=f"--config {path}:")
    for item in items or ():
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set lr=0.0001")
        values[name.strip()] = coerce_field(name.strip(), value.strip())
    return values


def overrides_tag(overrides: dict[str, Any]) -> str:
    """A run folder's readable part for its overrides: ``lr=0.0001,epochs=10`` (sorted); "" for none."""
    return ",".join(f"{k}={overrides[k]}" for k in sorted(overrides))
