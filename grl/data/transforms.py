"""Clip transforms: every frame of a clip gets the *same* random parameters.

The frames are stacked into one ``(T, 3, h, w)`` uint8 tensor and the
``torchvision.transforms.v2.functional`` ops are applied once to the stack, with
parameters drawn once per clip (from an explicit ``torch.Generator``, so a data
loader can make every clip depend only on its own seed, not on worker order).

Training: resize -> zero-pad + random crop -> horizontal flip (p=0.5) -> float
-> ImageNet normalisation -> random erasing (p=0.5, area 2-40 %, aspect 0.3-3.3,
filled with 0 = the ImageNet mean after normalisation, as the release's erasing
with mean fill). Test: resize -> float -> normalisation.

The authors' release (``ClipTransform.for_config`` with ``random_crop=False``,
``erasing="frame"``): no crop, and random erasing drawn *per frame* (p=0.5 each, area
2-20 %, aspect 0.3-3.3), each box filled with one random colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClipParams:
    """One clip's random draw. ``erase`` is ``(top, left, height, width)`` or ``None`` (one box for the
    clip); ``frame_erase`` has one ``(top, left, height, width, (r, g, b))`` or ``None`` per frame."""

    top: int
    left: int
    flip: bool
    erase: tuple[int, int, int, int] | None
    frame_erase: tuple | None = None


def frames_to_tensor(frames: Sequence, height: int, width: int) -> torch.Tensor:
    """PIL images / HxWx3 uint8 arrays -> resized ``(T, 3, height, width)`` uint8 tensor."""
    if len(frames) == 0:
        raise ValueError("frames is empty: a clip needs at least one frame")
    tensors = []
    for frame in frames:
        if isinstance(frame, Image.Image):
            t = F.pil_to_tensor(frame.convert("RGB") if frame.mode != "RGB" else frame)
        else:
            t = torch.as_tensor(np.asarray(frame, dtype=np.uint8)).permute(2, 0, 1)
        tensors.append(t)
    if len({tuple(t.shape) for t in tensors}) == 1:  # the usual case: resize the stack once
        return F.resize(torch.stack(tensors), [height, width], antialias=True)
    return torch.stack([F.resize(t, [height, width], antialias=True) for t in tensors])


class ClipTransform:
    """``ClipTransform(height, width, train)(frames, generator=None) -> (T, 3, H, W)`` float.

    ``padding`` defaults to 10 px at 256x128, scaled with the size:
    ``(round(10 * width / 128), round(10 * height / 256))`` as (x, y), at least 1 px.
    """

    def __init__(
        self,
        height: int,
        width: int,
        train: bool,
        *,
        padding: tuple[int, int] | None = None,
        flip_p: float = 0.5,
        erase_p: float = 0.5,
        erase_scale: tuple[float, float] | None = None,
        erase_ratio: tuple[float, float] = (0.3, 1 / 0.3),
        random_crop: bool = True,
        erasing: str = "clip",
    ):
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be >= 1, got {height}x{width}")
        for name, p in (("flip_p", flip_p), ("erase_p", erase_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        self.height, self.width, self.train = int(height), int(width), bool(train)
        if padding is None:
            padding = (max(1, round(10 * width / 128)), max(1, round(10 * height / 256)))
        self.padding = tuple(int(p) for p in padding)
        if erasing not in ("clip", "frame"):
            raise ValueError(f"erasing must be 'clip' or 'frame', got {erasing!r}")
        self.flip_p, self.erase_p = flip_p, erase_p
        self.erase_scale = erase_scale or ((0.02, 0.4) if erasing == "clip" else (0.02, 0.2))
        self.erase_ratio, self.random_crop, self.erasing = erase_ratio, bool(random_crop), erasing

    @classmethod
    def for_config(cls, config, train: bool) -> "ClipTransform":
        """The transform a Config asks for (size, crop, erasing)."""
        return cls(config.height, config.width, train, random_crop=config.random_crop, erasing=config.erasing)

    def __repr__(self) -> str:
        return f"ClipTransform(height={self.height}, width={self.width}, train={self.train}, padding={self.padding})"

    def sample_params(self, generator: torch.Generator | None = None, num_frames: int = 1) -> ClipParams:
        """Draw one clip's parameters (crop offset in the padded image, flip, erasing box(es))."""
        px, py = self.padding

        def randint(high: int) -> int:  # uniform in [0, high)
            return int(torch.randint(high, (1,), generator=generator))

        def uniform() -> float:
            return float(torch.rand((), generator=generator))

        def box() -> tuple[int, int, int, int] | None:
            area = self.height * self.width
            log_r = (math.log(self.erase_ratio[0]), math.log(self.erase_ratio[1]))
            for _ in range(10):  # torchvision's RandomErasing: retry boxes that do not fit
                target = area * (self.erase_scale[0] + uniform() * (self.erase_scale[1] - self.erase_scale[0]))
                ratio = math.exp(log_r[0] + uniform() * (log_r[1] - log_r[0]))
                h, w = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
                if 0 < h < self.height and 0 < w < self.width:
                    return (randint(self.height - h + 1), randint(self.width - w + 1), h, w)
            return None

        top, left = (randint(2 * py + 1), randint(2 * px + 1)) if self.random_crop else (py, px)
        flip = uniform() < self.flip_p
        if self.erasing == "frame":
            boxes = []
            for _ in range(num_frames):
                drawn = box() if uniform() < self.erase_p else None
                colour = (uniform(), uniform(), uniform())  # drawn either way: frames stay independent
                boxes.append(None if drawn is None else (*drawn, colour))
            return ClipParams(top=top, left=left, flip=flip, erase=None, frame_erase=tuple(boxes))
        erase = box() if uniform() < self.erase_p else None
        return ClipParams(top=top, left=left, flip=flip, erase=erase)

    def apply(self, clip: torch.Tensor, params: ClipParams | None) -> torch.Tensor:
        """Resized uint8 ``(T, 3, H, W)`` -> normalised float clip; ``params=None`` = test mode."""
        if params is not None:
            px, py = self.padding
            clip = F.pad(clip, [px, py], fill=0)
            clip = F.crop(clip, params.top, params.left, self.height, self.width)
            if params.flip:
                clip = F.horizontal_flip(clip)
        clip = F.to_dtype(clip, torch.float32, scale=True)
        clip = F.normalize(clip, IMAGENET_MEAN, IMAGENET_STD)
        if params is not None and params.erase is not None:
            i, j, h, w = params.erase
            clip = F.erase(clip, i, j, h, w, torch.zeros(1, 1, 1))
        if params is not None and params.frame_erase is not None:
            clip = clip.clone()
            mean, std = torch.tensor(IMAGENET_MEAN)[:, None], torch.tensor(IMAGENET_STD)[:, None]
            for t, drawn in enumerate(params.frame_erase[: clip.shape[0]]):
                if drawn is not None:
                    i, j, h, w, colour = drawn
                    fill = ((torch.tensor(colour)[:, None] - mean) / std).to(clip.dtype)  # (3,1) normalised colour
                    clip[t, :, i : i + h, j : j + w] = fill[:, :, None]
        return clip

    def __call__(self, frames: Sequence, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.transform_resized(frames_to_tensor(frames, self.height, self.width), generator)

    def transform_resized(self, clip: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Like calling the transform, on a clip already resized to (T, 3, height, width) uint8 (a frame cache's)."""
        if clip.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"transform_resized: clip is {tuple(clip.shape[-2:])}, expected {(self.height, self.width)}"
            )
        return self.apply(clip, self.sample_params(generator, clip.shape[0]) if self.train else None)
