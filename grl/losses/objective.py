"""The training objective, eq. 14: L = λ1·L_f + λ2·L_v + λ3·L_veri (+ the release's triplet)."""

from __future__ import annotations

from torch import Tensor, nn

from grl.losses.oim import OIMLoss
from grl.losses.triplet import soft_margin_triplet_loss
from grl.losses.verification import VerificationHead, split_pairs, verification_loss


class GRLObjective(nn.Module):
    """Holds the OIM lookup tables and the verification head; ``forward(output, pids)``.

    * L_f (eq. 12): OIM over the B·T frame features F^h_t, labels repeated over T — when
      ``config.oim`` contains "f" (Table 6).
    * L_v (eq. 13): OIM on F^l_T (Baseline: on F^g) — when ``config.oim`` contains "v".
    * L_veri (eq. 11): verification BCE between the first and last B/2 clips of the paired
      batch, on the attention-pooled F^h (Baseline: F^g) — when ``config.use_verification``.
    * triplet: soft-margin batch-hard on the same feature — when ``config.use_triplet``.
    * pooled OIM (the authors' release, ``config.oim_pooled``): an OIM on the attention-pooled F^h
      with the frame-level lookup table (it reads and updates that table), weight λ1; needs the
      frame-level OIM (Table 6's V-OIM row has none, so there it is absent).

    ``dims`` maps GRLOutput field names to feature sizes (``GRL.dims``); an int means all equal.
    Returns ``(total, parts)`` with parts = {"frame_oim", "video_oim", "pooled_oim", "verification",
    "triplet", "total"} as floats (only the active terms).
    """

    def __init__(self, config, num_classes: int, dims: dict[str, int] | int) -> None:
        super().__init__()
        if isinstance(dims, int):
            dims = dict.fromkeys(("global_feature", "frame_high", "video_high", "video_low"), dims)
        self.baseline = not config.use_gce
        self.lambdas = {
            "frame_oim": config.lambda_frame,
            "video_oim": config.lambda_video,
            "pooled_oim": config.lambda_frame,
            "verification": config.lambda_veri,
        }
        self.use_triplet = config.use_triplet
        oim = dict(scale=config.oim_scale, momentum=config.oim_momentum)
        video_field = "global_feature" if self.baseline else "video_low"
        self.pair_field = "global_feature" if self.baseline else "video_high"
        self.frame_oim = OIMLoss(num_classes, dims["frame_high"], **oim) if "f" in config.oim else None
        self.video_oim = OIMLoss(num_classes, dims[video_field], **oim) if "v" in config.oim else None
        self.verification = VerificationHead(dims[self.pair_field]) if config.use_verification else None
        self.video_field = video_field
        self.oim_pooled = bool(config.oim_pooled) and self.frame_oim is not None and not self.baseline

    def forward(self, output, pids: Tensor) -> tuple[Tensor, dict[str, float]]:
        terms: dict[str, Tensor] = {}
        if self.frame_oim is not None:  # eq. 12
            B, T, D = output.frame_high.shape
            frames, frame_pids = output.frame_high.reshape(B * T, D), pids.repeat_interleave(T)
            terms["frame_oim"] = self.frame_oim.loss(frames, frame_pids)
            if self.oim_pooled:
                # The release: the frame-level table scores (and learns from) the pooled F^h too. Both terms score
                # against the table before this step's updates, as in the release, whose table learns in backward
                # (there the pooled update lands first; docs/fidelity.md).
                terms["pooled_oim"] = self.frame_oim.loss(output.video_high, pids)
            if self.frame_oim.training:
                if self.oim_pooled:
                    self.frame_oim.update(output.video_high, pids)
                self.frame_oim.update(frames, frame_pids)
        if self.video_oim is not None:  # eq. 13
            terms["video_oim"] = self.video_oim(getattr(output, self.video_field), pids)
        paired = getattr(output, self.pair_field)
        if self.verification is not None:  # eq. 11
            terms["verification"] = verification_loss(self.verification, *split_pairs(paired, pids))
        total = sum(self.lambdas[name] * value for name, value in terms.items())  # eq. 14
        if self.use_triplet:
            terms["triplet"] = soft_margin_triplet_loss(paired, pids)
            total = total + terms["triplet"]
        parts = {name: float(value.detach()) for name, value in terms.items()}
        parts["total"] = float(total.detach())
        return total, parts
