"""Test-time feature extraction and evaluation of a trained GRL model.

Two test samplings (config.test_sampling):

* ``"rrs"``   — one clip per tracklet: the first frame of each of T equal chunks (RRS test mode).
* ``"dense"`` — every frame, in consecutive T-frame chunks; the chunk features of a tracklet are
  averaged, then L2-normalised.

Features are always returned L2-normalised (cosine distance is what the paper's protocol uses,
and normalising makes rrs and dense features directly comparable).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from grl import run_folder
from grl.config import Config, ConfigError
from grl.utils import resolve_device, torch_threads

_SAMPLINGS = ("rrs", "dense")


def autocast_context(config: Config, device: torch.device):
    """bf16 (or fp16 where bf16 is unsupported) autocast on CUDA when config.amp; a no-op elsewhere."""
    if device.type == "cuda" and config.amp:
        return torch.autocast("cuda", dtype=amp_dtype(device))
    return contextlib.nullcontext()


def amp_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _model_device(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's parameters live and their floating dtype (inputs are cast to it)."""
    for p in list(model.parameters()) + list(model.buffers()):
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.float32


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    tracklets: Sequence,
    config: Config,
    sampling: str = "rrs",
    features: Sequence[str] | None = None,
    frames=None,
) -> dict[str, torch.Tensor]:
    """One L2-normalised (N, D) CPU tensor per test feature (default config.test_features), float32 or
    float64 as the model's parameters (a float64 run is evaluated in float64 end to end).

    Row i belongs to ``tracklets[i]``. The model runs in eval mode on the device its parameters
    live on; its previous train/eval mode is restored afterwards. ``frames``: a frame cache holding the
    tracklets' resized frames (grl.data.frame_cache), read instead of decoding the files.
    """
    from grl.data.loader import build_test_loader  # late import: keeps engine importable alone

    if sampling not in _SAMPLINGS:
        raise ValueError(f"extract_features: sampling must be one of {list(_SAMPLINGS)}, got {sampling!r}")
    names = tuple(features) if features is not None else tuple(config.test_features)
    n = len(tracklets)
    if n == 0:
        raise ValueError("extract_features: 'tracklets' is empty; nothing to extract")
    device, dtype = _model_device(model)
    accumulate = torch.float64 if dtype == torch.float64 else torch.float32
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    counts = torch.zeros(n, dtype=accumulate)
    try:
        loader = build_test_loader(list(tracklets), config, sampling=sampling, frames=frames)
        for clips, index in loader:
            # Inputs stay contiguous: a channels_last model's first conv converts them.
            clips = clips.to(device, dtype=dtype, non_blocking=True)
            with autocast_context(config, device):
                out = model(clips)
            index = index.long().cpu()
            for name in names:
                feat = out.test_feature(name).to(accumulate).cpu()
                if name not in sums:
                    sums[name] = torch.zeros(n, feat.shape[1], dtype=accumulate)
                sums[name].index_add_(0, index, feat)
            counts.index_add_(0, index, torch.ones(len(index), dtype=accumulate))
    finally:
        model.train(was_training)
    missing = (counts == 0).nonzero().flatten()
    if len(missing):
        raise RuntimeError(
            f"extract_features: the test loader yielded no clip for {len(missing)} of {n} tracklets "
            f"(first: index {int(missing[0])}); check build_test_loader(sampling={sampling!r})"
        )
    # Averaging chunk features, then normalising: for rrs (one clip each) this is a plain normalise.
    return {name: F.normalize(s / counts[:, None], dim=1) for name, s in sums.items()}


@dataclass
class TestSet:
    """A model's test features of a dataset, ready to rank: per feature name, the query rows and the gallery
    rows (L2-normalised), with their identities and cameras."""

    query: dict[str, torch.Tensor]  # name -> (Q, D)
    gallery: dict[str, torch.Tensor]  # name -> (G, D)
    q_pids: torch.Tensor
    g_pids: torch.Tensor
    q_cams: torch.Tensor
    g_cams: torch.Tensor

    def distance(self, name: str) -> torch.Tensor:
        """(Q, G) cosine distance of feature ``name``."""
        from grl.evaluation import pairwise_distance

        return pairwise_distance(self.query[name], self.gallery[name], metric="cosine")

    def ids(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q_pids, g_pids, q_cams, g_cams), in the argument order of grl.evaluation's functions."""
        return self.q_pids, self.g_pids, self.q_cams, self.g_cams


def encode_test_set(model: torch.nn.Module, dataset, config: Config, features: Sequence[str] | None = None) -> TestSet:
    """Every test feature of config (or ``features``) for the dataset's queries and gallery, each tracklet encoded
    once (MARS' gallery holds the queries too), with config.test_sampling and the dataset's frame cache if any."""
    if not dataset.query or not dataset.gallery:
        raise ValueError(
            f"evaluate_model: dataset {getattr(dataset, 'name', '?')!r} has an empty query "
            f"({len(dataset.query)}) or gallery ({len(dataset.gallery)}) set"
        )
    unique: dict = {}
    for t in list(dataset.query) + list(dataset.gallery):
        unique.setdefault(t, len(unique))
    with torch_threads(config.threads):
        feats = extract_features(
            model,
            list(unique),
            config,
            sampling=config.test_sampling,
            features=features,
            frames=getattr(dataset, "frame_cache", None),
        )
    q_idx = torch.tensor([unique[t] for t in dataset.query])
    g_idx = torch.tensor([unique[t] for t in dataset.gallery])
    return TestSet(
        query={n: f[q_idx] for n, f in feats.items()},
        gallery={n: f[g_idx] for n, f in feats.items()},
        q_pids=torch.tensor([t.pid for t in dataset.query]),
        g_pids=torch.tensor([t.pid for t in dataset.gallery]),
        q_cams=torch.tensor([t.camid for t in dataset.query]),
        g_cams=torch.tensor([t.camid for t in dataset.gallery]),
    )


def evaluate_model(model: torch.nn.Module, dataset, config: Config) -> dict[str, dict]:
    """CMC + mAP (percent) of every test feature of config, cosine distance, config.test_sampling;
    with ``config.rerank`` also of the main feature after k-reciprocal re-ranking ("h+l+rerank").

    Returns {feature: metrics} with the keys of grl.evaluation.evaluate_ranking. The gallery
    convention (e.g. MARS gallery including the queries) is the dataset's: see dataset.protocol.
    """
    from grl.evaluation import evaluate_ranking, pairwise_distance

    test = encode_test_set(model, dataset, config)
    results = {}
    for name in test.query:
        dist = test.distance(name)
        results[name] = evaluate_ranking(dist, *test.ids())
        if config.rerank and name == config.main_feature:  # k-reciprocal re-ranking (Zhong et al. 2017)
            from grl.reranking import re_ranking

            q, g = test.query[name], test.gallery[name]
            with torch_threads(config.threads):
                final = re_ranking(dist, pairwise_distance(q, q), pairwise_distance(g, g))
            results[f"{name}+rerank"] = evaluate_ranking(final, *test.ids())
    return results


def load_run(source, device: str | torch.device = "cpu"):
    """(config, model in eval mode on ``device``) from a finished run folder, its ``model.pt`` or a training
    ``checkpoint.pt`` (the ``python -m grl evaluate`` / ``extract`` / ``visrank`` sources).

    Tensors and plain data only (``weights_only=True``): a file holding any other object is refused, never
    unpickled. The backbone is built without fetching ImageNet weights (the saved weights replace them).
    """
    from grl.models import build_model

    path = Path(source)
    if path.is_dir():
        path = run_folder.model(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such model file; give a finished run folder (it holds {run_folder.MODEL}, written when "
            f"training finishes), a {run_folder.MODEL} or a {run_folder.CHECKPOINT}"
        )
    try:
        blob = run_folder.load_tensors(path)
    except run_folder.UnreadableFile as exc:
        if exc.foreign:
            raise ConfigError(
                f"{path} holds objects other than tensors and plain data, so it is not loaded (it could run code when "
                f"unpickled; a GRL model file holds a state_dict, its config and its key): {exc.detail}"
            ) from None
        raise ConfigError(f"{path} is not a readable model file ({exc})") from None
    weights = blob.get("state_dict", blob.get("model")) if isinstance(blob, dict) else None
    if weights is None or "config" not in blob:
        raise ConfigError(
            f"{path} is not a GRL model file: expected a {run_folder.MODEL} (keys 'state_dict', 'config') or a "
            f"{run_folder.CHECKPOINT} (keys 'model', 'config')"
        )
    config = Config.from_dict(blob["config"])
    model = build_model(config.replace(pretrained=False))
    model.load_state_dict(weights)
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    return config, model.to(device=device, dtype=config.torch_dtype).eval()
