"""File formats: a fast deterministic PNG encoder, JPEG frames, and ``.mat`` files with a fixed header.

Everything written here is byte-identical for the same input (no timestamps), which is what
makes a generated dataset reproducible file by file.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image


def encode_png(frame: np.ndarray) -> bytes:
    """A standard RGB PNG with the Paeth filter on every row and run-length deflate.

    Written by hand because PIL's adaptive filtering + default deflate costs ~1 ms per frame,
    which dominated generation; this is ~5x faster for ~10% larger files, and deterministic.
    """
    h, w, _ = frame.shape
    r = frame.reshape(h, w * 3).astype(np.int16)
    a = np.zeros_like(r)
    a[:, 3:] = r[:, :-3]
    b = np.zeros_like(r)
    b[1:] = r[:-1]
    c = np.zeros_like(r)
    c[1:, 3:] = r[:-1, :-3]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    data = np.empty((h, w * 3 + 1), dtype=np.uint8)
    data[:, 0] = 4  # Paeth
    data[:, 1:] = (r - pred).astype(np.uint8)
    z = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = z.compress(data.tobytes()) + z.flush()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def encode_frame(frame: np.ndarray, fmt: str) -> bytes:
    """One ``(H, W, 3)`` uint8 frame as a file's bytes: PNG (lossless) for ``fmt`` "png", else JPEG (quality 90)."""
    if fmt == "png":
        return encode_png(frame)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_frames(folder: Path, names: Sequence[str], frames: np.ndarray, fmt: str) -> None:
    """Write ``frames`` into ``folder`` (created if needed), one file per name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(names, frames):
        (folder / name).write_bytes(encode_frame(frame, fmt))


def write_mat(path: Path, mdict: dict) -> None:
    """scipy.io.savemat with the header's creation time replaced, so files are byte-identical."""
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, mdict)
    data = bytearray(buf.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: grl.data.synthetic".ljust(116)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
