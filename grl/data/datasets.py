"""What a video Re-ID dataset is, whatever its layout: :class:`Tracklet` lists (train / query / gallery) in a
:class:`VideoReIDDataset`, the published layouts and sources, the errors a loader raises, and reading frames.

The loaders: grl.data.study_sets (MARS, iLIDS-VID, PRID2011), grl.data.extra_datasets (DukeMTMC-VideoReID,
LS-VID); ``grl.data.load_dataset`` reads any of the five. Loading only lists and slices file names; frames are
decoded later, by :func:`decode_frame`, so a corrupt frame surfaces where it is used.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

try:
    import simplejpeg as _simplejpeg
except ImportError:  # the real-data extra is not installed: Pillow decodes every frame
    _simplejpeg = None

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    from PIL import Image

DATASETS = ("mars", "ilidsvid", "prid2011")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
NUM_SPLITS = 10  # iLIDS-VID and PRID2011 are evaluated over 10 random train/test splits
PRID_MIN_FRAMES = 22  # "sequence pairs with more than 21 frames" (paper §4.1)
PRID_SPLIT_SEED = 0

SOURCES = {
    "mars": "http://zheng-lab.cecs.anu.edu.au/Project/project_mars.html",
    "ilidsvid": "https://xiatian-zhu.github.io/downloads_qmul_iLIDS-VID_ReID_dataset.html",
    "prid2011": "https://www.tugraz.at/institute/icg/research/team-bischof/lrs/downloads/PRID11/",
}

LAYOUTS = {
    "mars": """<root>/
  info/train_name.txt          one frame file name per line
  info/test_name.txt
  info/tracks_train_info.mat   key 'track_train_info': rows [start, end, pid, camid] (1-based)
  info/tracks_test_info.mat    key 'track_test_info'
  info/query_IDX.mat           key 'query_IDX': 1-based rows of the test track table
  bbox_train/<pid4>/<name>.jpg e.g. bbox_train/0001/0001C1T0001F001.jpg
  bbox_test/<pid4>/<name>.jpg""",
    "ilidsvid": """<root>/
  i-LIDS-VID/sequences/cam1/personNNN/cam1_personNNN_NNNNN.png
  i-LIDS-VID/sequences/cam2/personNNN/cam2_personNNN_NNNNN.png
  train-test people splits/train_test_splits_ilidsvid.mat   key 'ls_set' (10 x N)""",
    "prid2011": """<root>/
  prid_2011/multi_shot/cam_a/person_NNNN/NNNN.png
  prid_2011/multi_shot/cam_b/person_NNNN/NNNN.png
  splits_prid2011.json   (optional) list of 10 {"train": [...], "test": [...]} of person_NNNN names""",
}


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
    # Resized frames to read instead of decoding (grl.data.frame_cache), set by load_config_dataset.
    frame_cache: object = field(default=None, repr=False, compare=False)

    @property
    def num_train_ids(self) -> int:
        return len({t.pid for t in self.train})

    def summary_table(self) -> "pandas.DataFrame":
        """Ids, tracklets, frames and tracklet lengths per subset (rows train / query / gallery)."""
        import pandas as pd

        rows = {}
        for subset in ("train", "query", "gallery"):
            tracklets = getattr(self, subset)
            lengths = [len(t) for t in tracklets]
            rows[subset] = {
                "ids": len({t.pid for t in tracklets}),
                "tracklets": len(tracklets),
                "frames": sum(lengths),
                "min_frames": min(lengths, default=0),
                "mean_frames": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
                "max_frames": max(lengths, default=0),
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def summary(self) -> str:
        """The summary table and the protocol, as text for a log or a notebook."""
        lines = [f"{self.name} (split {self.split}) at {self.root}", self.summary_table().to_string(), "protocol:"]
        lines += [f"  {key}: {value}" for key, value in self.protocol.items()]
        return "\n".join(lines)

    def summary_dict(self) -> dict:
        """JSON-friendly summary (for result files)."""
        table = self.summary_table()
        return {
            "name": self.name,
            "root": self.root,
            "split": self.split,
            "num_train_ids": self.num_train_ids,
            "protocol": dict(self.protocol),
            "table": {
                row: {k: v.item() if hasattr(v, "item") else v for k, v in cols.items()}
                for row, cols in table.to_dict(orient="index").items()
            },
        }


def read_frame(path: str | os.PathLike) -> "Image.Image":
    """Decode one frame as an RGB PIL image; CorruptFrameError (naming the file) if it cannot be."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")  # convert() forces the full decode, so truncation shows here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise CorruptFrameError(f"cannot read frame {os.fspath(path)}: {type(error).__name__}: {error}") from error


_JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_DECODER_ENV = "GRL_JPEG_DECODER"  # "pillow": no simplejpeg even where it is installed


def decode_frame(path: str | os.PathLike) -> np.ndarray:
    """One frame as an ``(H, W, 3)`` uint8 RGB array, the loader's decoder. A JPEG is decoded by simplejpeg where
    it is installed (the ``real-data`` extra): libjpeg-turbo with Pillow's settings (accurate DCT, smooth chroma
    upsampling), so the same pixels as Pillow's, 2.95 times as fast on our CPU (docs/benchmarks.md, "The data path at
    real size"). Anything else, and any JPEG simplejpeg refuses (a truncated file, CMYK), goes through
    :func:`read_frame`, whose CorruptFrameError names the file. ``GRL_JPEG_DECODER=pillow`` decodes every frame
    with Pillow."""
    if (
        _simplejpeg is not None
        and os.fspath(path).lower().endswith(_JPEG_SUFFIXES)
        and os.environ.get(JPEG_DECODER_ENV) != "pillow"
    ):
        try:
            with open(path, "rb") as handle:
                return _simplejpeg.decode_jpeg(handle.read(), colorspace="RGB", strict=True)
        except (OSError, ValueError):
            pass  # Pillow says what is wrong, or decodes what simplejpeg cannot
    return np.array(read_frame(path))  # a writable copy, as simplejpeg's: torch warns about read-only arrays


_DIGITS = "0123456789"
_LAST_NUMBER = re.compile(r"(\d+)\D*$")


def frame_number(file_name: str) -> int:
    """The last number in a file name's stem (MARS F001, iLIDS-VID _00317, PRID 0009); -1 if none."""
    stem = file_name.rpartition(".")[0] or file_name
    head = stem.rstrip(_DIGITS)
    if len(head) < len(stem):  # fast path: the stem ends in the number (all three datasets)
        return int(stem[len(head) :])
    match = _LAST_NUMBER.search(stem)
    return int(match.group(1)) if match else -1


def frame_key(file_name: str) -> tuple[int, str]:
    return frame_number(file_name), file_name


def list_frames(folder: str) -> tuple[str, ...]:
    """Image files of a tracklet folder, ordered by frame number (directory order is arbitrary)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    names.sort(key=frame_key)
    return tuple(os.path.join(folder, n) for n in names)


def list_persons(folder: str) -> list[str]:
    """Person folder names, ordered by person number (equal to sorted() for zero-padded names)."""
    return sorted((n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n))), key=frame_key)


def relabel(tracklets: list[Tracklet]) -> list[Tracklet]:
    """Train pids -> 0..N-1 in sorted order of the original pid."""
    mapping = {pid: label for label, pid in enumerate(sorted({t.pid for t in tracklets}))}
    return [Tracklet(t.frames, mapping[t.pid], t.camid) for t in tracklets]
