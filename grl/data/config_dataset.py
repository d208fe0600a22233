"""The dataset a run's :class:`~grl.config.Config` names: a real root read by :mod:`grl.data.datasets`, or the
built-in synthetic set (generated on first use), with the decoded-frame cache of the built-in sets. Above the
layouts, the cache and the generator, which never import it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grl.config import DATASETS, ConfigError
from grl.data.datasets import VideoReIDDataset
from grl.data.extra_datasets import load_dataset

if TYPE_CHECKING:
    from grl.config import Config


def load_config_dataset(config: "Config") -> VideoReIDDataset:
    """The dataset a run's config names. ``config.data_root == ""`` means the built-in synthetic one of size
    ``config.data_size``, generated here when it is missing: a Config is all a run needs."""
    if config.data_root == "" and config.dataset not in DATASETS:
        raise ConfigError(
            f"dataset {config.dataset!r} has no built-in synthetic set: give its root (--data-root / data_root)"
        )
    if config.data_root == "":
        from grl.data import synthetic  # lazy: rendering is only needed without real data

        sizes = synthetic.preset_sizes(config.data_size, config.dataset)
        expected = synthetic.data_version(config.dataset, **sizes)
        if config.data_version and config.data_version != expected:
            raise ValueError(
                f"config.data_version {config.data_version!r} is not what this code generates for the built-in "
                f"{config.dataset!r} set of size {config.data_size!r} ({expected!r}): the run was configured with "
                "another generator version. Rebuild the configuration (grl.experiments.make_run) to use today's data."
            )
        root = synthetic.ensure_synthetic(
            config.dataset, root=synthetic.default_root(config.dataset, config.data_size), **sizes
        )
    else:
        root = config.data_root
    dataset = load_dataset(
        config.dataset,
        root,
        config.split,
        ilidsvid_test_first=config.ilidsvid_test_first,
        mars_gallery_includes_queries=config.mars_gallery_includes_queries,
    )
    if config.frame_cache and config.data_version:  # the built-in sets are small enough to cache whole
        from grl.data.frame_cache import load_or_build

        dataset.frame_cache = load_or_build(dataset, config.data_version, config.height, config.width)
    return dataset
