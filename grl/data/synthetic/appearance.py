"""What people look like: clothing palettes, outfits shared by look-alike groups, and fine cues.

Outfit and body shape (top, bottom, pattern, height, width) are shared by a group of identities;
within a group only the small cues (bag, shoes, hat) tell people apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from grl.data.synthetic.seeds import GROUP, rng_for

# Clothing palette: deliberately a handful of colours, so outfits collide across groups too.
CLOTHES = np.array(
    [
        (200, 30, 35),
        (30, 60, 170),
        (35, 130, 50),
        (230, 200, 40),
        (240, 240, 235),
        (25, 25, 30),
        (120, 120, 125),
        (140, 80, 40),
        (230, 120, 30),
        (120, 40, 140),
        (90, 170, 200),
        (220, 140, 160),
        (60, 80, 50),
        (190, 170, 130),
    ],
    dtype=np.uint8,
)
PATTERNS = ("plain", "hstripes", "vstripes", "twotone")
HEIGHTS = (0.86, 0.93, 1.0)
WIDTHS = (0.85, 1.0, 1.18)
SKINS = ((235, 200, 170), (200, 150, 110), (140, 95, 65), (95, 65, 45))
HAIRS = ((30, 25, 20), (90, 60, 30), (180, 150, 90), (110, 110, 110))
BAG_COLOURS = ((110, 65, 30), (20, 20, 20), (200, 30, 30), (40, 90, 200))
SHOE_COLOURS = ((245, 245, 245), (15, 15, 15), (220, 30, 30), (240, 210, 30), (30, 120, 230))
HAT_COLOURS = ((230, 60, 20), (20, 20, 90), (250, 250, 250), (30, 140, 60))
SHOE_SHADOW = (45, 42, 40)  # what the feet look like when the shoes are not discernible
# Fine-cue combinations: bag (none, or colour x side), shoe colour, hat (none or colour).
_NUM_BAG = 1 + 2 * len(BAG_COLOURS)
_NUM_HAT = 1 + len(HAT_COLOURS)
_NUM_FINE = _NUM_BAG * len(SHOE_COLOURS) * _NUM_HAT


@dataclass(frozen=True)
class Identity:
    """What a person looks like. ``bag``/``hat`` are None when the person has none."""

    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    pattern: str
    pattern_colour: tuple[int, int, int]
    height: float  # relative body height
    width: float  # relative body width
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shoes: tuple[int, int, int]
    bag: tuple[int, int, int] | None = None
    bag_side: int = 1  # +1: bag on the image's right, -1: left
    hat: tuple[int, int, int] | None = None


def rgb(c: Sequence[int]) -> tuple[int, int, int]:
    """A colour as a tuple of three plain ints (PIL's fill type)."""
    return (int(c[0]), int(c[1]), int(c[2]))


# The outfit space is split in two halves by the parity of (top colour + bottom colour): the evaluation
# sets draw from one, the pretraining population (grl.data.synthetic.population) from the other, so no
# outfit seen in pretraining reappears in an evaluation set.
OUTFIT_POOLS = {"evaluation": 0, "pretraining": 1}


def outfit_pool(top: int, bottom: int) -> str:
    """The pool of an outfit, from the palette indices of its top and bottom colours."""
    return "evaluation" if (top + bottom) % 2 == OUTFIT_POOLS["evaluation"] else "pretraining"


def _outfit(rng: np.random.Generator, pool: str = "evaluation") -> dict:
    if pool not in OUTFIT_POOLS:
        raise ValueError(f"outfit pool must be one of {list(OUTFIT_POOLS)}, got {pool!r}")
    while True:  # rejection keeps the draw uniform within the pool
        top, bottom, pat = rng.choice(len(CLOTHES), size=3, replace=False)
        if outfit_pool(int(top), int(bottom)) == pool:
            break
    return dict(
        top=rgb(CLOTHES[top]),
        bottom=rgb(CLOTHES[bottom]),
        pattern=PATTERNS[rng.integers(len(PATTERNS))],
        pattern_colour=rgb(CLOTHES[pat]),
        height=HEIGHTS[rng.integers(len(HEIGHTS))],
        width=WIDTHS[rng.integers(len(WIDTHS))],
        skin=SKINS[rng.integers(len(SKINS))],
        hair=HAIRS[rng.integers(len(HAIRS))],
    )


def _fine_cues(code: int) -> dict:
    bag, rest = code % _NUM_BAG, code // _NUM_BAG
    shoes, hat = rest % len(SHOE_COLOURS), rest // len(SHOE_COLOURS)
    return dict(
        bag=None if bag == 0 else BAG_COLOURS[(bag - 1) // 2],
        bag_side=1 if bag % 2 else -1,
        shoes=SHOE_COLOURS[shoes],
        hat=None if hat == 0 else HAT_COLOURS[hat - 1],
    )


def make_identities(
    seed: int, code: int, subset: int, count: int, group_size: int, pool: str = "evaluation"
) -> list[Identity]:
    """``count`` identities drawn in groups of ``group_size`` sharing outfit and body shape.

    Within a group, each member gets a distinct fine-cue combination (bag/shoes/hat), so those
    small cues are the only thing separating look-alikes.
    """
    people: list[Identity] = []
    for g in range(math.ceil(count / group_size)):
        rng = rng_for(seed, code, GROUP, subset, g)
        outfit = _outfit(rng, pool)
        n = min(group_size, count - g * group_size)
        for fine in rng.choice(_NUM_FINE, size=n, replace=False):
            people.append(Identity(**outfit, **_fine_cues(int(fine))))
    return people


def random_identity(rng: np.random.Generator) -> Identity:
    """A one-off person (MARS distractors): outfit and fine cues drawn independently."""
    return Identity(**_outfit(rng), **_fine_cues(int(rng.integers(_NUM_FINE))))
