"""Verification loss, eq. 11: binary cross-entropy over probe × gallery pairs of a batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class VerificationHead(nn.Module):
    """The similarity estimation [p, g] of eq. 11, as in the release / [2]:
    (p − g)² → BN1d → Linear(feat_dim, 2) → softmax; column 1 = P("same person")."""

    def __init__(self, feat_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(feat_dim)
        self.classifier = nn.Linear(feat_dim, 2)

    def pair_logits(self, probe: Tensor, gallery: Tensor) -> Tensor:
        """probe (P,D), gallery (G,D) → logits (P,G,2) for every probe × gallery pair."""
        P, G = probe.shape[0], gallery.shape[0]
        diff = (probe.unsqueeze(1) - gallery.unsqueeze(0)) ** 2  # (P,G,D)
        return self.classifier(self.bn(diff.flatten(0, 1))).view(P, G, 2)

    def forward(self, probe: Tensor, gallery: Tensor) -> Tensor:
        """(P,G) probability that probe j and gallery k show the same person, ∈ (0,1)."""
        return torch.softmax(self.pair_logits(probe, gallery), dim=-1)[..., 1]


def pair_labels(probe_pids: Tensor, gallery_pids: Tensor) -> Tensor:
    """y_jk = 1 if probe j and gallery k share an identity, else 0 → (P,G) long."""
    return (probe_pids.unsqueeze(1) == gallery_pids.unsqueeze(0)).long()


def verification_loss(
    head: VerificationHead, probe: Tensor, gallery: Tensor, probe_pids: Tensor, gallery_pids: Tensor
) -> Tensor:
    """Eq. 11 averaged over all J = P·G pairs. BCE on the softmax "same" probability equals the
    2-class cross-entropy of the head's logits, which is what we compute (numerically stable)."""
    logits = head.pair_logits(probe, gallery)
    return F.cross_entropy(logits.flatten(0, 1), pair_labels(probe_pids, gallery_pids).flatten())


def split_pairs(features: Tensor, pids: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Paired batch (PairedBatchSampler): probes = first B/2 clips, gallery = last B/2."""
    half = features.shape[0] // 2
    return features[:half], features[half:], pids[:half], pids[half:]
