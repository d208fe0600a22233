"""The generator's identity, the one place it is set: manifests and ``data_version`` read it at call time, so a
bumped version regenerates stale caches and gives runs on the new data new keys."""

GENERATOR = "grl.data.synthetic"
GENERATOR_VERSION = 3  # bump whenever the output changes: stale caches are then regenerated
