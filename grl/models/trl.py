"""Temporal Reciprocal Learning (paper §3.2-3.3): Enhancement and Memory Units along the clip, forward and backward
(eq. 5-8), and the bi-directional integration (eq. 9-10).

Shapes: B clips, T frames, C backbone channels, h×w feature map, K = number of temporal directions (2 for
"both", else 1). Both temporal directions are *stacked along channels*: direction k owns channels
``[k*C, (k+1)*C)`` of every EMU tensor and every EMU conv is grouped (``groups=K``), so the two directions have
separate weights but share each kernel launch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# ====================================================================== EMU
class EnhancementMemoryUnit(nn.Module):
    """Enhancement and Memory Unit (Fig. 3, eq. 5-8) for K directions stacked along channels.

    * f1, f2: 1×1 conv + ReLU (C→C) per direction (eq. 5). f1's input X^h_t is shared by all
      directions, so f1 is one conv C → K·C; f2 is grouped (K·C → K·C, groups=K).
    * W_c: Linear C→C/16 (no bias), ReLU, Linear C/16→C (no bias) per direction (eq. 6),
      written as grouped 1×1 convs on the (K·C)-vector d_t.
    * Res: bottleneck of three 1×1 convs C→C/4→C/4→C with BN/ReLU, identity shortcut and ReLU
      after the add, as in ResNet [8] (eq. 8).
    """

    def __init__(self, channels: int, directions: int, use_memory: bool = True, use_enhancement: bool = True) -> None:
        super().__init__()
        C, K = channels, directions
        self.channels, self.directions = C, K
        self.use_memory, self.use_enhancement = use_memory, use_enhancement
        if use_enhancement:
            self.f1 = nn.Conv2d(C, K * C, 1)  # f1 of every direction on the same X^h_t
            self.f2 = nn.Conv2d(K * C, K * C, 1, groups=K)
            squeezed = max(1, C // 16)
            self.channel_weights = nn.Sequential(  # W_c
                nn.Conv2d(K * C, K * squeezed, 1, groups=K, bias=False),
                nn.ReLU(inplace=True),
                nn.Conv2d(K * squeezed, K * C, 1, groups=K, bias=False),
            )
        if use_memory:
            q = max(1, C // 4)
            self.residual = nn.Sequential(  # Res, without its shortcut
                nn.Conv2d(K * C, K * q, 1, groups=K, bias=False),
                nn.BatchNorm2d(K * q),
                nn.ReLU(inplace=True),
                nn.Conv2d(K * q, K * q, 1, groups=K, bias=False),
                nn.BatchNorm2d(K * q),
                nn.ReLU(inplace=True),
                nn.Conv2d(K * q, K * C, 1, groups=K, bias=False),
                nn.BatchNorm2d(K * C),
            )

    # ---- eq. 8
    def accumulate(self, memory: Tensor, low: Tensor) -> Tensor:
        """M_t = Res(M_{t−1} + X^l_t), eq. 8; memory, low (N,K·C,h,w). Without the memory block: M_{t−1}."""
        if not self.use_memory:
            return memory
        x = memory + low
        return F.relu(x + self.residual(x))

    # ---- eq. 5-6
    def channel_attention(self, high: Tensor, previous_memory: Tensor) -> Tensor:
        """a_t = σ(W_c(GAP((f2(M_{t−1}) − f1(X^h_t))²))), eq. 5-6.

        high (N,C,h,w) = X^h_t; previous_memory (N,K·C,h,w) = M_{t−1} of each direction → a (N,K·C).
        Without the enhancement block a_t = 0.
        """
        N = high.shape[0]
        if not self.use_enhancement:
            return high.new_zeros(N, self.directions * self.channels)
        difference = (F.relu(self.f2(previous_memory)) - F.relu(self.f1(high))) ** 2  # D_t (N,K·C,h,w), eq. 5
        d = difference.mean(dim=(2, 3), keepdim=True)  # d_t = GAP(D_t) (N,K·C,1,1)
        return torch.sigmoid(self.channel_weights(d)).flatten(1)  # a_t (N,K·C), eq. 6

    # ---- eq. 7
    def enhance(self, high: Tensor, previous_memory: Tensor) -> Tensor:
        """X^h'_t = (1 + a_t) ⊙ X^h_t, eq. 7 → (N,K,C,h,w) (one enhanced map per direction)."""
        a = self.channel_attention(high, previous_memory).view(-1, self.directions, self.channels, 1, 1)
        return (1 + a) * high.unsqueeze(1)


# ====================================================================== TRL
@dataclass
class ReciprocalResult:
    """Per-direction TRL outputs, all in frame order (index t = frame t)."""

    frame_high: Tensor  # (B,T,K,C) F^{h,k}_t = GAP(X^h'^k_t)
    final_memory: Tensor  # (B,K,C) GAP(M^k_T), the memory after the direction's last step
    attention: Tensor  # (B,T,K,C) a^k_t
    memories: Tensor | None  # (B,T,K,C,h,w) M^k after processing frame t, when asked


class TemporalReciprocalLearning(nn.Module):
    """TRL (§3.3): one EMU chain forward in time, one backward (separate weights).

    The backward chain processes frames T, T−1, …, 1; its outputs are re-aligned so that index t
    is frame t. Only the memory recurrence (eq. 8) loops over t; everything per frame — f1(X^h)
    for all frames, f2(M_{t−1}) for all steps, eq. 5-7 — is one batched call over B·T with the
    directions stacked along channels.
    """

    def __init__(
        self, channels: int, direction: str = "both", use_memory: bool = True, use_enhancement: bool = True
    ) -> None:
        super().__init__()
        if direction not in ("forward", "backward", "both"):
            raise ValueError(f"direction must be 'forward', 'backward' or 'both', got {direction!r}")
        self.direction = direction
        self.reversed = {"forward": (False,), "backward": (True,), "both": (False, True)}[direction]
        self.unit = EnhancementMemoryUnit(channels, len(self.reversed), use_memory, use_enhancement)

    def _flip_reversed(self, x: Tensor) -> Tensor:
        """x (B,T,K,...): flip time for the backward directions (step order ↔ frame order)."""
        if not any(self.reversed):
            return x
        parts = [x[:, :, k].flip(1) if rev else x[:, :, k] for k, rev in enumerate(self.reversed)]
        return torch.stack(parts, dim=2)

    def forward(self, high: Tensor, low: Tensor, return_memories: bool = False) -> ReciprocalResult:
        """high, low (B,T,C,h,w) = X^h, X^l → :class:`ReciprocalResult`."""
        B, T, C, h, w = high.shape
        K = len(self.reversed)
        # per direction, the frames in the order the chain sees them: (B,T,K·C,h,w)
        low_steps = self._flip_reversed(low.unsqueeze(2).expand(B, T, K, C, h, w)).reshape(B, T, K * C, h, w)
        memory = low.mean(dim=1).repeat(1, K, 1, 1)  # M_0 = mean_t X^l_t for every direction (B,K·C,h,w)
        steps = [memory]
        for t in range(T):  # eq. 8, the only sequential part
            memory = self.unit.accumulate(memory, low_steps[:, t])
            steps.append(memory)
        memories = torch.stack(steps, dim=1).view(B, T + 1, K, C, h, w)  # M_0..M_T in step order
        previous = self._flip_reversed(memories[:, :-1])  # M_{t−1} before frame t, frame order (B,T,K,C,h,w)
        attention = self.unit.channel_attention(high.flatten(0, 1), previous.flatten(0, 1).flatten(1, 2))  # (B*T,K·C)
        attention = attention.view(B, T, K, C)
        # F^{h,k}_t = GAP(X^h'^k_t) = GAP((1+a)⊙X^h_t) = (1+a)⊙GAP(X^h_t): a_t is constant over h×w (eq. 7 + GAP)
        frame_high = (1 + attention) * high.mean(dim=(3, 4)).unsqueeze(2)  # (B,T,K,C)
        final_memory = memories[:, -1].mean(dim=(3, 4))  # GAP(M^k_T) (B,K,C)
        aligned = self._flip_reversed(memories[:, 1:]) if return_memories else None  # (B,T,K,C,h,w)
        return ReciprocalResult(frame_high, final_memory, attention, aligned)


class Integration(nn.Module):
    """Bi-directional information integration, eq. 9-10.

    * "paper": F^h_t = W_h([F^{h,1}_t, F^{h,2}_t]), F^l_T = W_l([GAP(M^1_T), GAP(M^2_T)]) with
      W_h, W_l fully connected K·C → C (no bias) followed by BN1d (our addition: keeps the scale
      of the OIM inputs in check; a bias before BN is redundant).
    * "release": the directions are summed (time-aligned) and BN1d'ed; L2 at test time.
    """

    def __init__(self, channels: int, directions: int, mode: str = "paper") -> None:
        super().__init__()
        if mode not in ("paper", "release"):
            raise ValueError(f"integration must be 'paper' or 'release', got {mode!r}")
        self.mode = mode
        fan_in = directions * channels if mode == "paper" else channels
        self.high = self._head(fan_in, channels, mode)  # W_h
        self.low = self._head(fan_in, channels, mode)  # W_l

    @staticmethod
    def _head(fan_in: int, channels: int, mode: str) -> nn.Module:
        if mode == "paper":
            return nn.Sequential(nn.Linear(fan_in, channels, bias=False), nn.BatchNorm1d(channels))
        return nn.BatchNorm1d(channels)

    def _combine(self, x: Tensor) -> Tensor:  # (N,K,C) → (N,K·C) or (N,C)
        return x.flatten(1) if self.mode == "paper" else x.sum(dim=1)

    def forward(self, frame_high: Tensor, final_memory: Tensor) -> tuple[Tensor, Tensor]:
        """frame_high (B,T,K,C), final_memory (B,K,C) → F^h_t (B,T,C) (eq. 9), F^l_T (B,C) (eq. 10)."""
        B, T = frame_high.shape[:2]
        high = self.high(self._combine(frame_high.flatten(0, 1))).view(B, T, -1)
        return high, self.low(self._combine(final_memory))
