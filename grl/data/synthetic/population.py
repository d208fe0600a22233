"""The pretraining population: many synthetic people, disjoint from every evaluation set.

What ImageNet is to the paper's ResNet-50, this is to the CPU profiles' tiny backbone
(:mod:`grl.models.pretrain`). Its identities come from their own random streams (dataset code
``POPULATION``) and their outfits from the pretraining half of the outfit space
(:data:`grl.data.synthetic.appearance.OUTFIT_POOLS`), so no evaluation identity and no
evaluation outfit is ever seen in pretraining. Its cameras are its own too. Frames stay in
memory: nothing is written.
"""

from __future__ import annotations

import numpy as np

from grl.data.synthetic.appearance import make_identities
from grl.data.synthetic.cameras import camera_style
from grl.data.synthetic.render import render_tracklet
from grl.data.synthetic.seeds import TRACKLET, rng_for

POPULATION = 9  # dataset code of the pretraining population (the evaluation sets use 1-3)
NUM_CAMERAS = 8
CAMERAS_PER_ID = 2
FRAMES_PER_TRACKLET = 8
GROUP_SIZE = 4  # look-alike groups as in the evaluation sets' default


def population_frames(
    num_ids: int, size: tuple[int, int] = (128, 64), seed: int = 0, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``num_ids`` people, each walking past CAMERAS_PER_ID of NUM_CAMERAS cameras for FRAMES_PER_TRACKLET
    frames: ``(frames (N, H, W, 3) uint8, labels (N,) int64 in [0, num_ids))``."""
    from tqdm import tqdm

    if num_ids < 1:
        raise ValueError(f"population_frames: num_ids must be >= 1, got {num_ids}")
    styles = [camera_style(seed, POPULATION, c, size, noise=3.0) for c in range(NUM_CAMERAS)]
    people = make_identities(seed, POPULATION, 0, num_ids, GROUP_SIZE, pool="pretraining")
    frames, labels = [], []
    for pid, person in enumerate(
        tqdm(people, desc="rendering the pretraining population", disable=not progress, mininterval=2)
    ):
        rng = rng_for(seed, POPULATION, TRACKLET, pid)
        for cam in rng.choice(NUM_CAMERAS, size=CAMERAS_PER_ID, replace=False):
            clip, _ = render_tracklet(person, styles[int(cam)], FRAMES_PER_TRACKLET, rng, size)
            frames.append(clip)
            labels += [pid] * len(clip)
    return np.concatenate(frames), np.asarray(labels, dtype=np.int64)
