"""Video Re-ID data: dataset loaders (real on-disk formats), built-in synthetic datasets,
clip sampling (RRS, dense, paired batches), clip transforms and DataLoader builders."""

from grl.data.config_dataset import load_config_dataset
from grl.data.datasets import (
    CorruptFrameError,
    DatasetNotFoundError,
    Tracklet,
    VideoReIDDataset,
    decode_frame,
    read_frame,
)
from grl.data.extra_datasets import load_dataset

__all__ = [
    "CorruptFrameError",
    "DatasetNotFoundError",
    "Tracklet",
    "VideoReIDDataset",
    "decode_frame",
    "load_config_dataset",
    "load_dataset",
    "read_frame",
]
