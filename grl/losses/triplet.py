"""Soft-margin batch-hard triplet loss: an extra of the authors' release (not in the paper)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_margin_triplet_loss(features: Tensor, pids: Tensor) -> Tensor:
    """mean_i softplus(max_{p: y_p=y_i} ‖f_i−f_p‖ − min_{n: y_n≠y_i} ‖f_i−f_n‖) over the batch.

    Anchors without a positive (other than themselves) or without a negative are skipped."""
    dist = torch.cdist(features, features).clamp_min(1e-12)  # (N,N) euclidean
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    positive = same & ~eye
    valid = positive.any(1) & (~same).any(1)
    if not valid.any():
        return features.sum() * 0.0
    hardest_pos = dist.masked_fill(~positive, float("-inf")).max(1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(1).values
    return F.softplus(hardest_pos - hardest_neg)[valid].mean()
