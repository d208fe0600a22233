"""The GRL model (paper §3): Baseline → GCE (eq. 1-4) → TRL of EMUs (eq. 5-8) → integration (eq. 9-10).

Shapes: B clips, T frames, C backbone channels, h×w feature map, K = number of temporal
directions (2 for "both", else 1). Every switch of Tables 2-5 is a constructor argument:

* ``use_gce=False``  — the Baseline: only F^g (eq. 1).
* ``use_trl=False``  — "+GCE": F^h_t = GAP(X^h_t), F^l = TAP+GAP(X^l).
* ``use_memory=False`` — "− Memory Block": M_t = M_0 for every t (no accumulation, no Res).
* ``use_enhancement=False`` — "− Enhancement Block": a_t = 0, X^h' = X^h (f1, f2, W_c not built).
* ``direction`` — "forward" | "backward" | "both" (Table 5).
* ``integration`` — "paper" (FC over the concatenation, eq. 9-10) | "release" (sum + BN1d).

Temporal Reciprocal Learning (the EMUs and the integration) is grl.models.trl; the rest is here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grl.models.backbone import build_backbone
from grl.models.trl import EnhancementMemoryUnit, Integration, ReciprocalResult, TemporalReciprocalLearning

__all__ = [
    "GRL",
    "AttentionPooling",
    "EnhancementMemoryUnit",
    "GlobalCorrelation",
    "GRLOutput",
    "Integration",
    "ReciprocalResult",
    "TemporalReciprocalLearning",
    "build_model",
    "count_parameters",
    "disentangle",
]

TEST_FEATURES = ("g", "l", "h", "h+l", "l+h+mean")


# ====================================================================== output
@dataclass
class GRLOutput:
    """What :meth:`GRL.forward` returns (contract in docs/architecture.md)."""

    global_feature: Tensor  # (B,C) F^g, eq. 1
    frame_high: Tensor | None = None  # (B,T,D) F^h_t, eq. 9 (GAP(X^h_t) without TRL)
    video_high: Tensor | None = None  # (B,D) attention-pooled F^h_t, L2-normalised
    video_low: Tensor | None = None  # (B,D) F^l_T, eq. 10 (TAP+GAP(X^l) without TRL)
    correlation: Tensor | None = None  # (B,T,h,w) R_t, eq. 2
    memory_forward: Tensor | None = None  # (B,T,C,h,w) M^1_t
    memory_backward: Tensor | None = None  # (B,T,C,h,w) M^2_t, index t = after frame t

    def test_feature(self, name: str) -> Tensor:
        """Retrieval feature (B,D'): "g", "l", "h", "h+l" (each part L2-normalised), and the release's
        "l+h+mean" = [F^l, pooled F^h, mean_t F^h] (3C: 6144-d with ResNet-50), each part L2-normalised.

        "g" (eq. 1) is the Baseline's test feature; every model has it, so GRL's own backbone can be tested the
        way the Baseline's is (docs/convergence.md, the backbone question). It is not among a GRL model's
        Config.test_features: the paper never tests GRL with it."""
        if name not in TEST_FEATURES:
            raise ValueError(f"unknown test feature {name!r}; expected one of {list(TEST_FEATURES)}")
        baseline = self.video_high is None
        if name == "g":
            return F.normalize(self.global_feature, dim=1)
        if baseline:
            raise ValueError(f"test feature {name!r} needs use_gce=True; the Baseline only has 'g'")
        high, low = F.normalize(self.video_high, dim=1), F.normalize(self.video_low, dim=1)
        if name == "l+h+mean":
            return torch.cat([low, high, F.normalize(self.frame_high.mean(dim=1), dim=1)], dim=1)
        return {"h": high, "l": low, "h+l": torch.cat([high, low], dim=1)}[name]


# ====================================================================== GCE
class GlobalCorrelation(nn.Module):
    """Global-guided Correlation Estimation, eq. 2-4.

    F^g → linear projection (Linear C→C/2 + BN1d + ReLU, the release's projection) = F̃^g,
    broadcast over h×w and concatenated with X_t; W_r = conv1×1 (C/2+C → C/2) + BN + ReLU,
    conv1×1 (C/2 → 1); σ → R_t. The paper says "two 1×1 convs inserted by BN and ReLU", which
    we follow; the release uses three (C+C/2→C/2 +BN; →C/8 +BN+ReLU; →1 +BN).

    The first conv on the concatenation ``[F̃^g, X_t]`` is computed as
    ``W[:, :C/2]·F̃^g + W[:, C/2:]·X_t`` — the same numbers (a 1×1 conv is linear in its input
    channels) without materialising the broadcast global map for every pixel.

    ``head="release"`` is the authors' release: the projection's Linear has a bias, and W_r is
    conv1×1 (C/2+C → C/2) + BN, conv1×1 (C/2 → C/8) + BN + ReLU, conv1×1 (C/8 → 1) + BN — no
    ReLU between the first two convs, and a BatchNorm before the sigmoid.
    """

    def __init__(self, channels: int, head: str = "paper") -> None:
        super().__init__()
        if head not in ("paper", "release"):
            raise ValueError(f"GlobalCorrelation head must be 'paper' or 'release', got {head!r}")
        half = channels // 2
        self.global_dim, self.head = half, head
        release = head == "release"
        self.global_projection = nn.Sequential(
            nn.Linear(channels, half, bias=release), nn.BatchNorm1d(half), nn.ReLU(inplace=True)
        )
        self.fuse = nn.Conv2d(half + channels, half, 1, bias=False)  # W_r, first conv, input [F̃^g, X_t]
        self.fuse_bn = nn.BatchNorm2d(half)
        if release:
            eighth = max(1, channels // 8)
            self.to_map = nn.Sequential(  # W_r, second and third conv; the release's final BN
                nn.Conv2d(half, eighth, 1, bias=False),
                nn.BatchNorm2d(eighth),
                nn.ReLU(inplace=True),
                nn.Conv2d(eighth, 1, 1, bias=False),
                nn.BatchNorm2d(1),
            )
        else:
            self.to_map = nn.Conv2d(half, 1, 1)  # W_r, second conv

    def forward(self, frames: Tensor, global_feature: Tensor) -> Tensor:
        """frames (B,T,C,h,w), global_feature (B,C) → correlation map R (B,T,h,w), eq. 2."""
        B, T, C, h, w = frames.shape
        guide = self.global_projection(global_feature)  # (B,C/2) = F̃^g before broadcasting
        weight = self.fuse.weight  # (C/2, C/2+C, 1, 1)
        from_global = F.linear(guide, weight[:, : self.global_dim, 0, 0])  # (B,C/2)
        from_frames = F.conv2d(frames.flatten(0, 1), weight[:, self.global_dim :])  # (B*T,C/2,h,w)
        fused = from_frames.unflatten(0, (B, T)) + from_global[:, None, :, None, None]  # (B,T,C/2,h,w)
        hidden = self.fuse_bn(fused.flatten(0, 1))
        if self.head == "paper":  # the release has no ReLU after its first conv
            hidden = F.relu(hidden)
        return torch.sigmoid(self.to_map(hidden)).view(B, T, h, w)  # (B,T,h,w) R_t ∈ (0,1)


def disentangle(frames: Tensor, correlation: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 3-4: X^h = X ⊙ R, X^l = X ⊙ (1 − R); frames (B,T,C,h,w), correlation (B,T,h,w)."""
    r = correlation.unsqueeze(2)  # (B,T,1,h,w), broadcast over channels
    return frames * r, frames * (1 - r)


class AttentionPooling(nn.Module):
    """ "The attentive pooled feature" of §3.1, as the release computes it.

    Q = L2norm(BN(Linear_q F^h)), K = L2norm(BN(Linear_k F^h)) with Linear C→min(512,C);
    weights = softmax(QKᵀ) over the T×T frame pairs (row-wise); pooled = mean over rows of
    (weights @ F^h), then L2-normalised. frame_high (B,T,D) → (B,D).

    The release's two differences are switches: ``normalize_input`` feeds the L2-normalised frame
    features to all three of query, key and values (the release's ``x_corr``), and ``bn_halves`` computes the BatchNorm
    statistics of each half of the batch separately in training (the paired batch's probes and
    partners, as the release feeds them through the network one half at a time).
    """

    def __init__(self, dim: int, inner: int = 512, normalize_input: bool = False, bn_halves: bool = False) -> None:
        super().__init__()
        inner = min(inner, dim)
        self.normalize_input, self.bn_halves = normalize_input, bn_halves
        self.query = nn.Sequential(nn.Linear(dim, inner), nn.BatchNorm1d(inner))
        self.key = nn.Sequential(nn.Linear(dim, inner), nn.BatchNorm1d(inner))

    def _project(self, layer: nn.Module, x: Tensor, B: int) -> Tensor:
        """x (B*T,D) → L2norm(BN(Linear x)); BN over each half batch separately when asked (training)."""
        if self.bn_halves and self.training and B >= 2:
            half = (B // 2) * (x.shape[0] // B)
            return F.normalize(torch.cat([layer(x[:half]), layer(x[half:])]), dim=1)
        return F.normalize(layer(x), dim=1)

    def forward(self, frame_high: Tensor) -> Tensor:
        B, T, D = frame_high.shape
        # The release normalises before the projections, so Q, K and the values all read the same x.
        values = F.normalize(frame_high, dim=2) if self.normalize_input else frame_high  # (B,T,D)
        flat = values.reshape(B * T, D)
        q = self._project(self.query, flat, B).view(B, T, -1)
        k = self._project(self.key, flat, B).view(B, T, -1)
        weights = torch.softmax(q @ k.transpose(1, 2), dim=-1)  # (B,T,T)
        pooled = (weights @ values).mean(dim=1)  # (B,D)
        return F.normalize(pooled, dim=1)


# ====================================================================== GRL
class GRL(nn.Module):
    """Global-guided Reciprocal Learning; see the module docstring for the switches."""

    def __init__(
        self,
        backbone: nn.Module,
        channels: int,
        *,
        use_gce: bool = True,
        use_trl: bool = True,
        use_memory: bool = True,
        use_enhancement: bool = True,
        direction: str = "both",
        integration: str = "paper",
        gce_head: str = "paper",
        pool_normalized: bool = False,
        pool_bn_halves: bool = False,
    ) -> None:
        super().__init__()
        if use_trl and not use_gce:
            raise ValueError("use_trl=True needs use_gce=True: TRL works on the features GCE disentangles")
        self.channels = channels
        self.use_gce, self.use_trl = use_gce, use_trl
        self.backbone = backbone
        if use_gce:
            self.correlation = GlobalCorrelation(channels, gce_head)
            self.pooling = AttentionPooling(channels, normalize_input=pool_normalized, bn_halves=pool_bn_halves)
        if use_trl:
            self.reciprocal = TemporalReciprocalLearning(channels, direction, use_memory, use_enhancement)
            self.integration = Integration(channels, len(self.reciprocal.reversed), integration)

    @property
    def dims(self) -> dict[str, int]:
        """Feature dimension of every GRLOutput vector (GRLObjective needs them)."""
        C = self.channels
        return {"global_feature": C, "frame_high": C, "video_high": C, "video_low": C}

    def frame_maps(self, clips: Tensor) -> Tensor:
        """clips (B,T,3,H,W) → X (B,T,C,h,w). Follows the backbone's memory format (channels_last ok)."""
        B, T = clips.shape[:2]
        frames = clips.reshape(B * T, *clips.shape[2:])  # (B*T,3,H,W)
        first = next(self.backbone.parameters())
        if first.dim() == 4 and first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous():
            frames = frames.contiguous(memory_format=torch.channels_last)
        maps = self.backbone(frames)  # (B*T,C,h,w)
        return maps.reshape(B, T, *maps.shape[1:])

    def forward(self, clips: Tensor, return_memories: bool = False) -> GRLOutput:
        x = self.frame_maps(clips)  # X_t (B,T,C,h,w)
        global_feature = x.mean(dim=(1, 3, 4))  # F^g = TAP+GAP(X), eq. 1 (B,C)
        if not self.use_gce:
            return GRLOutput(global_feature)
        correlation = self.correlation(x, global_feature)  # R_t (B,T,h,w), eq. 2
        high, low = disentangle(x, correlation)  # X^h, X^l (B,T,C,h,w), eq. 3-4
        out = GRLOutput(global_feature, correlation=correlation)
        if not self.use_trl:  # "+GCE"
            out.frame_high = high.mean(dim=(3, 4))  # GAP(X^h_t) (B,T,C)
            out.video_low = low.mean(dim=(1, 3, 4))  # TAP+GAP(X^l) (B,C)
        else:
            trl = self.reciprocal(high, low, return_memories)
            out.frame_high, out.video_low = self.integration(trl.frame_high, trl.final_memory)  # eq. 9-10
            if return_memories:
                for k, rev in enumerate(self.reciprocal.reversed):
                    setattr(out, "memory_backward" if rev else "memory_forward", trl.memories[:, :, k])
        out.video_high = self.pooling(out.frame_high)  # (B,D)
        return out


def build_model(config, weights_path=None) -> GRL:
    """GRL from a :class:`grl.config.Config` (backbone, pretrained and the §3 switches); ``weights_path``:
    the backbone's pretrained weights. The tiny backbone's default ones are made (once, cached) by
    grl.models.pretrain.ensure_pretrained, so ``build_model(config)`` is the model a run starts from."""
    if weights_path is None and config.pretrained and config.backbone == "tiny":
        from grl.models.pretrain import ensure_pretrained

        weights_path = ensure_pretrained(config)
    backbone, channels = build_backbone(config.backbone, config.pretrained, weights_path)
    return GRL(
        backbone,
        channels,
        use_gce=config.use_gce,
        use_trl=config.use_trl,
        use_memory=config.use_memory,
        use_enhancement=config.use_enhancement,
        direction=config.direction,
        integration=config.integration,
        gce_head=config.gce_head,
        pool_normalized=config.pool_normalized,
        pool_bn_halves=config.pool_bn_halves,
    )


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameter count per top-level module, plus "total"."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
