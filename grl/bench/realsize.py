"""The data path at real size, on this CPU: ``python -m grl.bench.realsize [--frames 50000] [--root DIR]``.

1. **A MARS-layout tree** (``info/``, ``bbox_train/<pid>/<pid>C<cam>T<tracklet>F<frame>.jpg``, ``bbox_test/``)
   of at least ``--frames`` JPEG frames at 256x128, written by the built-in generator with MARS-like tracklet
   lengths, then read back by the real MARS loader (``grl.data.load_dataset``): the index's time is measured.
   Its JPEG sizes are printed beside the real ones (MARS: about 6.3 GB for 1,191,003 frames, ~5.3 kB a frame).
2. **Decoders** on the same files, one thread each, side by side: Pillow (what the loader uses),
   ``torchvision.io.decode_jpeg``, and simplejpeg / OpenCV where installed; each one's pixels against Pillow's.
   The fastest decoder whose pixels equal Pillow's is the one the loader should use.
3. **The training path per worker**: decode, resize and the training augmentation at 256x128, batch 16 x T=8
   (``build_train_loader``; 0 workers = all of it in one process, the cost of one worker), frames per second,
   and the workers that keep a GPU step of a given time fed (``grl.bench.projection.loader_verdict``).

Not a test: the numbers depend on this machine and on whatever else runs on it. docs/benchmarks.md has them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from grl.utils import torch_threads

REAL_MARS_FRAME_KB = 6.3e9 / 1_191_003 / 1000  # about 6.3 GB for the 1,191,003 frames of MARS
# Frames per identity the generator writes at 16-100 frames a tracklet (measured: 45,801 frames for 306 ids).
MEAN_FRAMES_PER_ID = 150


def write_tree(root: str | Path, frames: int = 50_000, seed: int = 0) -> dict:
    """A MARS-layout tree of at least ``frames`` frames at 256x128 (grl.data.synthetic.writers.write_mars with
    MARS-like tracklet lengths, 16-100 frames; MARS averages 61). Returns the generator's counts, the frames, the
    mean JPEG size and the seconds it took."""
    from grl.data.synthetic.sizes import DEFAULT_SIZES
    from grl.data.synthetic.writers import write_mars

    root = Path(root)
    ids = math.ceil(1.15 * frames / MEAN_FRAMES_PER_ID / 2)  # train and test halves, 15 % over the target
    sizes = {
        **DEFAULT_SIZES["mars"],
        "num_train_ids": ids,
        "num_test_ids": ids,
        "min_len": 16,
        "max_len": 100,
        "height": 256,
        "width": 128,
    }
    start = time.perf_counter()
    counts = write_mars(root, seed, sizes, progress=True)
    seconds = time.perf_counter() - start
    files = [p for sub in ("bbox_train", "bbox_test") for p in (root / sub).rglob("*.jpg")]
    if len(files) < frames:
        raise RuntimeError(f"write_tree: {len(files)} frames written, fewer than the {frames} asked for")
    kb = sum(p.stat().st_size for p in files) / len(files) / 1000
    return {**counts, "frames": len(files), "mean_jpeg_kb": kb, "write_s": seconds}


def decoders() -> dict:
    """name -> path -> (H, W, 3) uint8 array, for every decoder importable here (Pillow always)."""
    from grl.data.datasets import read_frame

    found = {"Pillow (the loader's)": lambda p: np.asarray(read_frame(p))}
    try:
        import torchvision.io as tio

        found["torchvision.io.decode_jpeg"] = lambda p: tio.decode_jpeg(tio.read_file(str(p))).permute(1, 2, 0).numpy()
    except ImportError:  # pragma: no cover - torchvision is a runtime dependency
        pass
    try:
        import simplejpeg

        found["simplejpeg"] = lambda p: simplejpeg.decode_jpeg(Path(p).read_bytes())
    except ImportError:
        pass
    if importlib.util.find_spec("cv2") is not None:  # compared where installed; never a dependency of grl
        cv2 = importlib.import_module("cv2")
        found["OpenCV"] = lambda p: cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return found


def compare_decoders(files: list[Path], repeats: int = 2, check: int = 200) -> pd.DataFrame:
    """Frames per second of each decoder on ``files`` (one thread; the best of ``repeats`` passes, decoders
    interleaved so that a busy moment of the machine does not fall on one alone) and whether its pixels equal
    Pillow's on the first ``check`` files."""
    found = decoders()
    reference = [found["Pillow (the loader's)"](p) for p in files[:check]]
    best = {name: math.inf for name in found}
    with torch_threads(1):
        for _ in range(repeats):
            for name, decode in found.items():
                start = time.perf_counter()
                for path in files:
                    decode(path)
                best[name] = min(best[name], time.perf_counter() - start)
    rows = []
    for name, decode in found.items():
        same = all(np.array_equal(decode(p), r) for p, r in zip(files[:check], reference))
        rows.append({"decoder": name, "frames_per_s": len(files) / best[name], "pixels equal Pillow's": same})
    table = pd.DataFrame(rows)
    table["vs Pillow"] = table.frames_per_s / table.frames_per_s.iloc[0]
    return table


def loader_throughput(
    dataset, workers: int, batches: int, height: int = 256, width: int = 128, pillow_only: bool = False
) -> dict:
    """Frames per second of the training loader (decode, resize, augmentation, collation; batch 16 x T=8) with
    ``workers`` worker processes, after one warm-up batch; the paper profile's transform. ``pillow_only``: every
    frame decoded by Pillow, as without the real-data extra (GRL_JPEG_DECODER=pillow; workers inherit it)."""
    from grl.data.datasets import JPEG_DECODER_ENV

    before = os.environ.get(JPEG_DECODER_ENV)
    if pillow_only:
        os.environ[JPEG_DECODER_ENV] = "pillow"
    installed = importlib.util.find_spec("simplejpeg") is not None
    decoder = "Pillow" if pillow_only or not installed else "simplejpeg"
    try:
        return {"decoder": decoder, **_loader_throughput(dataset, workers, batches, height, width)}
    finally:
        if before is None:
            os.environ.pop(JPEG_DECODER_ENV, None)
        else:
            os.environ[JPEG_DECODER_ENV] = before


def _loader_throughput(dataset, workers: int, batches: int, height: int, width: int) -> dict:
    from grl.config import Config
    from grl.data.loader import build_train_loader
    from grl.experiments import PROFILES

    paper = PROFILES["paper"].config("grl", "mars")
    config = Config(
        height=height,
        width=width,
        seq_len=paper.seq_len,
        batch_size=paper.batch_size,
        num_workers=workers,
        steps_per_epoch=batches + 1,
        erasing=paper.erasing,
        random_crop=paper.random_crop,
        threads=1,
    )
    with torch_threads(1):
        it = iter(build_train_loader(dataset, config, seed=0))
        next(it)
        start = time.perf_counter()
        clips = sum(batch[0].shape[0] for batch in it)
        wall = time.perf_counter() - start
    frames = clips * config.seq_len
    return {"workers": workers, "clips": clips, "frames_per_s": frames / wall, "clips_per_s": clips / wall}


def workers_table(per_worker_clips_s: float, step_times=(0.05, 0.1, 0.2, 0.4), batch_size: int = 16) -> pd.DataFrame:
    """For each GPU step time: the clips per second it consumes and the loader workers (at this CPU's measured
    rate of one worker) that keep it fed."""
    from grl.bench.projection import loader_verdict

    rows = []
    for step_s in step_times:
        verdict = loader_verdict(per_worker_clips_s, step_s, batch_size, workers=1)
        rows.append(
            {
                "GPU step (s)": step_s,
                "clips/s consumed": verdict["needed_clips_s"],
                "workers to keep it fed": verdict["workers_needed"],
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50_000, help="frames of the generated tree (default 50000)")
    parser.add_argument("--root", default=None, help="write (or reuse) the tree here; default: a temporary folder")
    parser.add_argument("--decode-files", type=int, default=3000, help="files each decoder decodes (default 3000)")
    parser.add_argument("--batches", type=int, default=10, help="timed loader batches per row (default 10)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader workers per row")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grl-realsize-") as scratch:
        root = Path(opts.root or scratch)
        ready = (root / "info" / "tracks_test_info.mat").is_file()
        tree = {"frames": sum(1 for _ in root.rglob("*.jpg"))} if ready else write_tree(root, opts.frames)
        files = sorted((root / "bbox_train").rglob("*.jpg"))
        if not tree.get("mean_jpeg_kb"):
            tree["mean_jpeg_kb"] = sum(p.stat().st_size for p in files) / len(files) / 1000
        print(
            f"tree: {tree['frames']} frames, mean JPEG {tree['mean_jpeg_kb']:.1f} kB (MARS: "
            f"{REAL_MARS_FRAME_KB:.1f} kB)" + (f", written in {tree['write_s']:.0f} s" if "write_s" in tree else "")
        )
        from grl.data import load_dataset

        start = time.perf_counter()
        dataset = load_dataset("mars", str(root))
        index_s = time.perf_counter() - start
        print(
            f"MARS loader: index of {len(dataset.train)} train, {len(dataset.query)} query, {len(dataset.gallery)} "
            f"gallery tracklets read in {index_s:.2f} s"
        )
        step = max(1, len(files) // opts.decode_files)
        decode = compare_decoders(files[::step][: opts.decode_files])
        print("\nJPEG decoders, 256x128 frames, one thread each (best of 2 interleaved passes)")
        print(decode.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        rows = [loader_throughput(dataset, 0, opts.batches, pillow_only=True)]
        rows += [loader_throughput(dataset, w, opts.batches) for w in opts.workers]
        loader = pd.DataFrame(rows)
        print("\nTraining loader at 256x128, batch 16 x T=8 (decode, resize, augmentation, collation)")
        print(loader.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
        one = loader.loc[loader.workers == 0, "clips_per_s"]
        if len(one):
            print("\nWorkers that keep a GPU step fed (one worker = the measured 0-worker rate, the loader's decoder)")
            print(workers_table(float(one.iloc[-1])).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return {"tree": tree, "index_s": index_s, "decoders": decode, "loader": loader}


if __name__ == "__main__":
    main()
