"""Built-in synthetic video Re-ID datasets, written in the real datasets' on-disk formats.

Three generators produce a MARS-like, an iLIDS-VID-like and a PRID2011-like dataset whose
folders, file names, ``.mat`` tables and split files follow the distributed datasets exactly,
so :func:`grl.data.study_sets.load_study_dataset` reads them with no special case.

What is modelled
----------------
* Pedestrians drawn procedurally (PIL primitives, no external assets): head, hair, torso,
  arms and legs with a walking cycle (leg/arm swing, vertical bob).
* **Conspicuous, continuous cues**: top and bottom colours, a top pattern (plain, horizontal
  stripes, vertical stripes, two-tone), body height and width. These are *shared* by groups of
  ``group_size`` identities, so within a group only the fine cues tell people apart.
* **Small, intermittent cues**: a bag (colour, side), shoe colour and a hat. Each is visible
  only in some frames of a tracklet (the bag swings behind the body as the person turns, shoes
  and hat go in and out of view); :func:`render_tracklet` returns the per-frame visibility flags.
  This is the situation GRL's reciprocal learning targets: the global cue is always there, the
  discriminative local cue only in some frames.
* **Cameras** differ in colour cast, brightness, contrast, illumination gradient, background
  (wall/floor colours and texture), blur and sensor noise.
* **Tracklets** have walking motion, per-frame misalignment (position jitter), scale drift,
  background panning and, in some tracklets, passing occluders (a pole or another passer-by).
* MARS extras: distractor tracklets (pid 0, unique random people) and junk tracklets
  (pid -1, partial detections / background), queries chosen one per (test identity, camera).

What is not modelled
--------------------
No 3-D pose or viewpoint change of the body shape, no lighting physics, no detector/tracker
failure modes beyond junk tracklets, no crowd interaction, no realistic textures. The PNG sets
(iLIDS-VID, PRID2011) carry no sensor noise and are quantised to steps of 4 grey levels, which
keeps lossless frames ~4 KB; the MARS-like JPEG set has mild noise. Absolute
accuracies on these sets say nothing about real-data accuracy; they exercise the full pipeline
and let ablations show whether a component can exploit intermittent fine cues.

Reproducibility: every random draw comes from ``numpy.random.default_rng`` seeded by a tuple
(seed, dataset, purpose, index...), so the same seed gives byte-identical files (PNG/JPEG
encoding is deterministic; the ``.mat`` header timestamp is replaced by a fixed text), and an
identity renders the same whatever else is generated. Generation happens in a temporary
sibling folder that is renamed into place once ``manifest.json`` (written last) is there, so an
interrupted run leaves no half-dataset behind and is simply redone.

Modules
-------
``seeds`` (random streams), ``appearance`` (identities, palettes, outfits), ``cameras`` (camera
looks and their photometric model), ``render`` (pedestrians and tracklets), ``formats`` (PNG,
JPEG and ``.mat`` files), ``writers`` (the three dataset layouts), ``sizes`` (dataset names and
size parameters), ``store`` (generation, cache, manifest, data version), ``sheet`` (contact
sheet), ``tracklets`` (the writers' tracklets and their roles, without rendering), ``cues`` (how
often the sets hold intermittent cues, occlusion, misalignment and look-alikes:
``python -m grl.data.synthetic.cues``), ``version`` (the generator's version), ``cli``
(``python -m grl.data.synthetic``, above the package: it is not imported here). Everything else public is importable from here.
"""

from grl.data.synthetic.appearance import (
    BAG_COLOURS,
    CLOTHES,
    HAIRS,
    HAT_COLOURS,
    HEIGHTS,
    PATTERNS,
    SHOE_COLOURS,
    SKINS,
    WIDTHS,
    Identity,
    make_identities,
    random_identity,
)
from grl.data.synthetic.cameras import CameraStyle, apply_camera, camera_style
from grl.data.synthetic.population import population_frames
from grl.data.synthetic.render import render_person, render_tracklet
from grl.data.synthetic.sheet import contact_sheet
from grl.data.synthetic.sizes import DATASETS, DEFAULT_SIZES, SIZE_PRESETS, preset_sizes, resolve_sizes
from grl.data.synthetic.store import data_version, default_root, ensure_synthetic, generate, read_manifest
from grl.data.synthetic.version import GENERATOR, GENERATOR_VERSION
from grl.data.synthetic.writers import outfit_groups, write_ilidsvid, write_mars, write_prid2011

__all__ = [
    "BAG_COLOURS",
    "CLOTHES",
    "DATASETS",
    "DEFAULT_SIZES",
    "GENERATOR",
    "GENERATOR_VERSION",
    "HAIRS",
    "HAT_COLOURS",
    "HEIGHTS",
    "PATTERNS",
    "SHOE_COLOURS",
    "SKINS",
    "WIDTHS",
    "CameraStyle",
    "Identity",
    "apply_camera",
    "camera_style",
    "contact_sheet",
    "data_version",
    "default_root",
    "ensure_synthetic",
    "generate",
    "SIZE_PRESETS",
    "preset_sizes",
    "population_frames",
    "make_identities",
    "outfit_groups",
    "random_identity",
    "read_manifest",
    "render_person",
    "render_tracklet",
    "resolve_sizes",
    "write_ilidsvid",
    "write_mars",
    "write_prid2011",
]
