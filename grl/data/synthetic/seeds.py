"""Random streams: every draw of the generator comes from its own seeded ``numpy`` generator.

A stream is named by a tuple (seed, dataset code, purpose, index...), so different kinds of draws
never share a stream and an identity renders the same whatever else is generated.
"""

from __future__ import annotations

import numpy as np

CODES = {"mars": 1, "ilidsvid": 2, "prid2011": 3}  # the dataset's code, part of every seed tuple
# Purposes in the seed tuple, so that different kinds of draws never share a stream.
CAMERA, GROUP, IDENTITY, TRACKLET, LAYOUT, DISTRACTOR, JUNK = range(7)


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """The generator of stream ``(seed, *key)``."""
    return np.random.default_rng([int(seed) % 2**63, *[int(k) for k in key]])
