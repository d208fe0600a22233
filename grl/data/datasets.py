"""Loaders for MARS, iLIDS-VID and PRID2011 in their distributed on-disk layouts.

(Contract stub: being implemented. The dataclasses below are the agreed public shapes.)
"""
from __future__ import annotations

from dataclasses import dataclass, field


class DatasetNotFoundError(FileNotFoundError):
    """The dataset root is missing or incomplete; the message names dataset, path, layout and source."""


class CorruptFrameError(OSError):
    """A frame file cannot be read or decoded; the message names the file."""


@dataclass(frozen=True)
class Tracklet:
    frames: tuple[str, ...]  # absolute paths, ordered by the frame number in the file name
    pid: int
    camid: int  # 0-based camera index

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class VideoReIDDataset:
    name: str
    root: str
    train: list[Tracklet]
    query: list[Tracklet]
    gallery: list[Tracklet]
    split: int = 0
    protocol: dict = field(default_factory=dict)

    @property
    def num_train_ids(self) -> int:
        return len({t.pid for t in self.train})


def load_dataset(name: str, root: str, split: int = 0, **options) -> VideoReIDDataset:
    raise NotImplementedError("being implemented")
