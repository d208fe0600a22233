"""Losses of GRL: OIM (eq. 12-13), verification (eq. 11), the release's triplet, eq. 14."""

from grl.losses.objective import GRLObjective
from grl.losses.oim import OIMLoss
from grl.losses.triplet import soft_margin_triplet_loss
from grl.losses.verification import VerificationHead, pair_labels, split_pairs, verification_loss

__all__ = [
    "GRLObjective",
    "OIMLoss",
    "VerificationHead",
    "pair_labels",
    "soft_margin_triplet_loss",
    "split_pairs",
    "verification_loss",
]
