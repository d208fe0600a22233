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
from typing import Any

DATASETS = ("mars", "ilidsvid", "prid2011")
BACKBONES = ("resnet50", "resnet18", "tiny")
DIRECTIONS = ("forward", "backward", "both")
INTEGRATIONS = ("paper", "release")
OIM_LEVELS = ("v", "f", "v+f")
TEST_SAMPLINGS = ("rrs", "dense")
TEST_FEATURES = ("g", "l", "h", "h+l")
OPTIMIZERS = ("sgd", "adam")
DTYPES = ("float32", "float64")

# Fields that change neither what is trained nor what is measured: left out of the key.
# `threads` is left out too: with float32 it moves the last digits (which the seeds' confidence
# intervals cover), and the float64 profiles pin it, so it never decides what a run is.
_NOT_IN_KEY = frozenset({"num_workers", "device", "data_root", "eval_every", "threads"})


class ConfigError(ValueError):
    """A configuration value or name that is not allowed; the message names the field."""


@dataclass(frozen=True)
class Config:
    # --- data (paper §4.1-4.2) ---
    dataset: str = "mars"
    data_root: str = ""  # "" = the built-in synthetic dataset under data/synthetic/<dataset>
    data_version: str = ""  # id of the generated data (grl.data.synthetic.data_version); "" for real data
    split: int = 0  # iLIDS-VID / PRID2011 split index (0..9)
    ilidsvid_test_first: bool = True  # common convention; False = the authors' release
    mars_gallery_includes_queries: bool = True  # the authors' release convention
    seq_len: int = 8  # T
    height: int = 256
    width: int = 128
    batch_size: int = 16  # tracklets; half random, half same-id partners from another camera
    test_sampling: str = "rrs"  # "rrs" (first frame per chunk) or "dense" (all frames)
    num_workers: int = 0
    # --- model (paper §3) ---
    backbone: str = "resnet50"
    pretrained: bool = True  # ImageNet weights; see grl.models.backbone for where they come from
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
    lambda_veri: float = 1.0  # lambda_3
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
    eval_every: int = 0  # 0 = evaluate only at the end
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # CUDA only
    channels_last: bool = True  # CUDA only
    # --- arithmetic (what makes a run's numbers portable across CPUs; README "What is identical where") ---
    dtype: str = "float32"  # "float64": the quick profile, identical on every x86-64 CPU
    threads: int = 0  # torch threads while training / evaluating; 0 = leave torch's setting alone

    def __post_init__(self) -> None:
        choices = {
            "dataset": DATASETS,
            "backbone": BACKBONES,
            "direction": DIRECTIONS,
            "integration": INTEGRATIONS,
            "oim": OIM_LEVELS,
            "test_sampling": TEST_SAMPLINGS,
            "optimizer": OPTIMIZERS,
            "dtype": DTYPES,
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
        for name in ("seq_len", "height", "width", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config field {name!r} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % 2:
            raise ConfigError(f"config field 'batch_size' must be even (half probes, half partners), got {self.batch_size}")
        if self.use_trl and not self.use_gce:
            raise ConfigError("use_trl=True needs use_gce=True: TRL works on the features GCE disentangles")
        if not self.use_gce and self.oim != "v":
            raise ConfigError(f"oim={self.oim!r} needs use_gce=True: the Baseline has only the video-level OIM on F^g")
        if self.threads < 0:
            raise ConfigError(f"config field 'threads' must be >= 0 (0 = torch's default), got {self.threads}")
        if self.seed < 0:
            raise ConfigError(f"config field 'seed' must be >= 0, got {self.seed}")
        if not 0 <= self.split <= 9:
            raise ConfigError(f"config field 'split' must be in 0..9, got {self.split}")

    # ---- construction -------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """Build from a plain dict, refusing unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any) -> "Config":
        return Config.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---- identity -----------------------------------------------------
    def key(self) -> str:
        """Short stable hash of everything that changes the trained model or its numbers."""
        payload = {k: v for k, v in self.to_dict().items() if k not in _NOT_IN_KEY}
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    @property
    def test_features(self) -> tuple[str, ...]:
        """The test features this model can produce (Table 2's "Feat. to test")."""
        return ("g",) if not self.use_gce else ("l", "h", "h+l")


def _field_type(f: dataclasses.Field) -> type:
    # `from __future__ import annotations` makes f.type a string.
    return {"str": str, "int": int, "float": float, "bool": bool}[str(f.type)]
