"""A pretrained tiny backbone, made here the way the paper starts from ImageNet (§4.2).

The paper fine-tunes a ResNet-50 pretrained on ImageNet: its global feature means something before
GRL's first step, and the correlation maps (eq. 2-4) are guided by it. The CPU profiles' tiny
backbone has no such weights, so this module makes them: frame-level identity classification on a
large synthetic population whose identities and outfits are disjoint from every evaluation set
(:func:`grl.data.synthetic.population_frames` draws outfits from the pretraining half of the outfit
space), with the standard augmentation of the fine-tuning (zero-pad + random crop, flip, random
erasing) and label-smoothed cross-entropy.

The result is cached under ``data/pretrained/`` keyed by everything that decides it
(:class:`PretrainSpec`: backbone, input size, arithmetic, population, steps, seed and the synthetic
generator's version), rebuilt only when one of those changes, and deterministic per seed (in
float64 on one thread it is bit-identical on every x86-64 CPU, like the quick profile's runs). A
corrupt, truncated or mismatched file is rebuilt with a warning naming it, never loaded silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from grl.config import Config
from grl.utils import atomic_torch_save, torch_threads

log = logging.getLogger(__name__)

BATCH = 64  # frames per step
LR = 1e-3
WEIGHT_DECAY = 5e-4
LABEL_SMOOTHING = 0.1


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that decides the pretrained weights (the cache key)."""

    backbone: str
    height: int
    width: int
    dtype: str
    ids: int  # identities of the pretraining population
    steps: int  # optimisation steps of BATCH frames
    seed: int
    generator_version: int

    @classmethod
    def from_config(cls, config: Config) -> "PretrainSpec":
        from grl.data.synthetic.version import GENERATOR_VERSION

        return cls(
            backbone=config.backbone,
            height=config.height,
            width=config.width,
            dtype=config.dtype,
            ids=config.pretrain_ids,
            steps=config.pretrain_steps,
            seed=0,
            generator_version=GENERATOR_VERSION,
        )

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def path(self) -> Path:
        from grl.paths import data_dir

        return data_dir() / "pretrained" / f"{self.backbone}-{self.height}x{self.width}-{self.key()}.pt"


class FrameClassifier(nn.Module):
    """Backbone -> global average pooling -> BN -> linear over the pretraining identities."""

    def __init__(self, backbone: nn.Module, channels: int, num_ids: int):
        super().__init__()
        self.backbone = backbone
        self.bn = nn.BatchNorm1d(channels)
        self.fc = nn.Linear(channels, num_ids)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, num_ids)
        return self.fc(self.bn(self.backbone(frames).mean(dim=(2, 3))))


def ensure_pretrained(config: Config, progress: bool = True) -> Path:
    """The pretrained backbone file for ``config`` (tiny backbone), made first if missing or unusable."""
    from filelock import FileLock

    spec = PretrainSpec.from_config(config)
    path = spec.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # parallel jobs of one study make it once
        if read_pretrained(path, spec) is None:
            pretrain(spec, path, threads=config.threads, progress=progress)  # leaves the random state alone
            # Read back what was written. This also draws from the random state exactly as finding the file
            # does (the check builds a network), so a run's own layers start the same either way.
            if read_pretrained(path, spec) is None:
                raise RuntimeError(f"the pretrained backbone {path} cannot be read back right after it was written")
    return path


def read_pretrained(path: Path, spec: PretrainSpec | None = None) -> dict | None:
    """The file's contents if it is a complete pretrained backbone for ``spec``; None (with a warning naming
    the file when it exists) otherwise."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        problem = None
        if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
            problem = "not a pretrained-backbone file"
        elif spec is not None and saved.get("spec") != asdict(spec):
            problem = f"made for another configuration ({saved.get('spec')})"
        else:
            _check_state(saved["state_dict"], saved["spec"]["backbone"])
    except Exception as exc:  # truncated / corrupt pickle, wrong tensors
        problem = f"unreadable ({type(exc).__name__}: {exc})"
    if problem:
        log.warning("pretrained backbone %s is %s; rebuilding it", path, problem)
        return None
    return saved


def _check_state(state: dict, backbone: str) -> None:
    from grl.models.backbone import build_backbone

    net, _ = build_backbone(backbone, pretrained=False)
    net.load_state_dict(state)  # raises on missing / unexpected keys or wrong shapes


def pretrain(spec: PretrainSpec, path: Path, *, threads: int = 0, progress: bool = True) -> dict:
    """Train the backbone on the pretraining population and write ``path`` atomically."""
    from tqdm import tqdm

    from grl.data.synthetic import population_frames
    from grl.data.transforms import ClipTransform, frames_to_tensor
    from grl.models.backbone import build_backbone

    started = time.perf_counter()
    dtype = getattr(torch, spec.dtype)
    # fork_rng: the caller's random state is left as it was, so a run that happens to make this file first
    # initialises its own layers exactly like a run that finds the file made.
    with torch_threads(threads), torch.random.fork_rng(devices=[]):
        frames, labels = population_frames(
            spec.ids, size=(2 * spec.height, 2 * spec.width), seed=spec.seed, progress=progress
        )  # (N, 2H, 2W, 3) uint8, (N,)
        # Resized once, exactly as the fine-tuning's loader resizes a frame.
        resized = torch.cat(
            [frames_to_tensor(list(chunk), spec.height, spec.width) for chunk in torch.from_numpy(frames).split(256)]
        )  # (N, 3, H, W) uint8
        labels = torch.from_numpy(labels).long()
        rendered = time.perf_counter() - started
        torch.manual_seed(spec.seed)
        backbone, channels = build_backbone(spec.backbone, pretrained=False)
        model = FrameClassifier(backbone, channels, spec.ids).to(dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.steps)
        transform = ClipTransform(spec.height, spec.width, train=True)
        generator = torch.Generator().manual_seed(spec.seed)
        losses, correct = [], []
        model.train()
        for _ in tqdm(
            range(spec.steps), desc=f"pretraining the {spec.backbone} backbone", disable=not progress, mininterval=2
        ):
            pick = torch.randint(len(resized), (BATCH,), generator=generator)
            batch = torch.stack([transform.transform_resized(resized[i : i + 1], generator)[0] for i in pick.tolist()])
            logits = model(batch.to(dtype))
            loss = F.cross_entropy(logits, labels[pick], label_smoothing=LABEL_SMOOTHING)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            correct.append((logits.argmax(1) == labels[pick]).double().mean().item())
    tail = max(1, spec.steps // 10)
    saved = {
        "spec": asdict(spec),
        "state_dict": model.backbone.state_dict(),
        "frames": int(len(resized)),
        "final_loss": sum(losses[-tail:]) / tail,
        "final_train_accuracy": 100 * sum(correct[-tail:]) / tail,
        "render_s": rendered,
        "seconds": time.perf_counter() - started,
    }
    atomic_torch_save(saved, path)
    log.info(
        "pretrained backbone %s: %d ids, %d frames, %d steps, train accuracy %.1f %%, %.0f s",
        path.name,
        spec.ids,
        len(resized),
        spec.steps,
        saved["final_train_accuracy"],
        saved["seconds"],
    )
    return saved


def pretraining_summary(config: Config) -> dict | None:
    """What the report shows about the backbone a run started from (None: no synthetic pretraining)."""
    if not (config.pretrained and config.backbone == "tiny"):
        return None
    spec = PretrainSpec.from_config(config)
    saved = read_pretrained(spec.path(), spec)
    if saved is None:
        return None
    return {k: saved[k] for k in ("frames", "final_loss", "final_train_accuracy", "render_s", "seconds")} | {
        "ids": spec.ids,
        "steps": spec.steps,
        "file": spec.path().name,
    }
