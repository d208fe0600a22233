"""Online Instance Matching loss [29] (frame-level eq. 12, video-level eq. 13)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class OIMLoss(nn.Module):
    """OIM: cross-entropy over ``scale · normalize(x) · LUTᵀ`` with a lookup table of identities.

    The table (buffer ``lookup_table`` (num_classes, feat_dim), zeros at start) is not learned by
    gradient: after the loss is computed, in training mode and under no_grad, every sample in
    batch order does ``LUT[y] ← normalize(momentum·LUT[y] + (1−momentum)·normalize(x))``.
    Samples of *different* identities are independent, so the update loops only over the
    occurrence rank within an identity (e.g. 2·T times for a paired batch at frame level),
    updating all identities at once — the same numbers as a per-sample loop.
    """

    def __init__(self, num_classes: int, feat_dim: int, scale: float = 30.0, momentum: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.feat_dim = num_classes, feat_dim
        self.scale, self.momentum = float(scale), float(momentum)
        self.register_buffer("lookup_table", torch.zeros(num_classes, feat_dim))

    def logits(self, features: Tensor) -> Tensor:
        """(N,D) → (N,num_classes) = scale · normalize(x) · LUTᵀ (the W_i F of eq. 12-13).

        At least fp32, also under autocast: at scale 30 a bf16 logit is off by up to ~0.1, as much
        as a real difference between identities (the table stays in fp32 / fp64 too)."""
        dtype = torch.promote_types(self.lookup_table.dtype, torch.float32)
        with torch.autocast(features.device.type, enabled=False):
            return self.scale * F.normalize(features.to(dtype), dim=1) @ self.lookup_table.to(dtype).t()

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        loss = self.loss(features, labels)
        if self.training:
            self.update(features, labels)
        return loss

    def loss(self, features: Tensor, labels: Tensor) -> Tensor:
        """Eq. 12 / 13 against the table as it is, without updating it (two terms sharing a table score against
        the same one; GRLObjective's pooled OIM)."""
        return F.cross_entropy(self.logits(features), labels)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        """LUT[y] ← normalize(m·LUT[y] + (1−m)·normalize(x)), sample by sample in batch order."""
        x = F.normalize(
            features.detach().to(self.lookup_table.dtype), dim=1
        )  # the table's precision, also under autocast
        table = self.lookup_table.clone()  # out of place: the old table is saved for backward
        order = torch.sort(labels, stable=True).indices
        sorted_labels = labels[order]
        first = torch.searchsorted(sorted_labels, sorted_labels)  # first index of each label group
        rank = torch.empty_like(labels)
        rank[order] = torch.arange(len(labels), device=labels.device) - first  # occurrence rank in its identity
        for r in range(int(rank.max()) + 1 if len(labels) else 0):
            pick = rank == r  # at most one sample per identity
            ids = labels[pick]
            table[ids] = F.normalize(self.momentum * table[ids] + (1 - self.momentum) * x[pick], dim=1)
        self.lookup_table = table.to(self.lookup_table.dtype)
