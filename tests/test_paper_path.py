"""The ``paper`` profile's own code path, end to end on the CPU: ResNet-50 at 256x128 with (random) "ImageNet" weights
given through GRL_PRETRAINED_WEIGHTS, JPEG frames of a real-layout MARS tree, a DataLoader with 2 workers, the RRS
test (training's final evaluation, with re-ranking) and the dense test, the checkpoint, ``evaluate`` and ``extract``.

Two training steps of a batch of 4 tracklets (the paper's 16 shrunk through --set: one CPU step of the full batch
peaked at 14 GB); the image size and the backbone are the paper's. Step time and peak memory are printed."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

pytestmark = pytest.mark.slow


def _jpeg(rng, colour) -> bytes:
    pixels = np.clip(np.asarray(colour) + rng.normal(0, 20, (128, 64, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _mars_tree(root, rng):
    """A MARS tree as distributed (bbox_train/, bbox_test/, info/), 128x64 JPEG frames: 4 train and 3 test ids,
    two cameras each, 6-9 frames per tracklet."""
    colours = {pid: rng.integers(0, 255, 3) for pid in range(1, 9)}
    for subset, pids in (("train", (1, 2, 3, 4)), ("test", (5, 6, 7))):
        names, rows = [], []
        for pid in pids:
            for cam in (1, 2):
                frames = int(rng.integers(6, 10))
                track = [f"{pid:04d}C{cam}T0001F{f:03d}.jpg" for f in range(1, frames + 1)]
                rows.append([len(names) + 1, len(names) + frames, pid, cam])
                names += track
                folder = root / f"bbox_{subset}" / f"{pid:04d}"
                folder.mkdir(parents=True, exist_ok=True)
                for name in track:
                    (folder / name).write_bytes(_jpeg(rng, colours[pid]))
        (root / "info").mkdir(parents=True, exist_ok=True)
        (root / "info" / f"{subset}_name.txt").write_text("\n".join(names) + "\n")
        scipy.io.savemat(root / "info" / f"tracks_{subset}_info.mat", {f"track_{subset}_info": np.array(rows, float)})
    # queries: camera 1 of each test id (rows 1, 3, 5)
    scipy.io.savemat(root / "info" / "query_IDX.mat", {"query_IDX": np.array([[1, 3, 5]], float)})


def test_the_paper_profile_runs_end_to_end_on_cpu(tmp_path, capsys):
    from torchvision.models import resnet50

    _mars_tree(tmp_path / "MARS", np.random.default_rng(0))
    torch.manual_seed(0)
    torch.save(resnet50(weights=None).state_dict(), tmp_path / "resnet50-random.pth")
    env = {**os.environ, "GRL_PRETRAINED_WEIGHTS": str(tmp_path / "resnet50-random.pth"), "OMP_NUM_THREADS": "2"}
    run_dir = tmp_path / "run"
    common = ["--data-root", str(tmp_path / "MARS")]

    def grl(*args):
        out = subprocess.run([sys.executable, "-m", "grl", *args], capture_output=True, text=True, env=env, timeout=170)
        assert out.returncode == 0, out.stderr[-3000:]
        return out

    started = time.perf_counter()
    grl("train", "--profile", "paper", "--experiment", "grl", "--dataset", "mars", *common, "--run-dir", str(run_dir),
        "--set", "batch_size=4", "--set", "epochs=1", "--set", "steps_per_epoch=2", "--set", "num_workers=2",
        "--set", "device=cpu")  # fmt: skip
    train_s = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB, the largest child
    result = json.loads((run_dir / "result.json").read_text())
    config = result["config"]
    assert (config["backbone"], config["height"], config["width"], config["seq_len"]) == ("resnet50", 256, 128, 8)
    assert config["num_workers"] == 2 and config["test_sampling"] == "rrs" and config["pretrained"]
    assert set(result["metrics"]) >= {"h+l", "h+l+rerank"} and result["dataset"]["num_train_ids"] == 4
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1
    epoch = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert epoch["steps"] == 2 and np.isfinite(epoch["loss"])

    dense = grl("evaluate", str(run_dir), "--set", "test_sampling=dense", "--out", str(tmp_path / "dense.json"))
    assert "h+l" in dense.stdout and json.loads((tmp_path / "dense.json").read_text())["test_sampling"] == "dense"
    grl("extract", str(run_dir / "checkpoint.pt"), "--out", str(tmp_path / "features.npz"))
    grl("evaluate", str(tmp_path / "features.npz"), "--out", str(tmp_path / "again.json"))
    again = json.loads((tmp_path / "again.json").read_text())["metrics"]
    assert again["h+l"] == result["metrics"]["h+l"]  # the RRS test of the saved checkpoint, ranked from the file
    with capsys.disabled():
        print(
            f"\n[paper path] ResNet-50 256x128, batch 4 x T=8, 2 workers: training + RRS test {train_s:.0f} s "
            f"(step {epoch['train_time_s'] / epoch['steps']:.1f} s), peak resident memory {peak_gb:.1f} GB"
        )
    assert train_s < 180
