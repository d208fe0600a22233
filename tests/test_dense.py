"""The dense test in bounded memory (docs/benchmarks.md, "The data path at real size"): a long tracklet is
encoded a batch of T-frame chunks at a time, and its feature equals the one computed from every chunk at once; the
real-size benchmarks' arithmetic on made-up numbers."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from grl.bench import dense, realsize
from grl.config import Config
from grl.data.loader import build_test_loader
from grl.engine.features import extract_features
from grl.models.grl import build_model


@pytest.fixture(scope="module")
def long_tracklet(tmp_path_factory):
    return dense.write_long_tracklet(tmp_path_factory.mktemp("long"), frames=37, height=32, width=16)


def _config(batch_size: int) -> Config:
    return Config(
        backbone="tiny", pretrained=False, height=32, width=16, seq_len=4, batch_size=batch_size, threads=1,
        test_sampling="dense",
    )  # fmt: skip


def test_the_loader_never_holds_more_than_one_batch_of_chunks(long_tracklet):
    batches = [clips.shape for clips, _ in build_test_loader([long_tracklet], _config(4), sampling="dense")]
    assert sum(b[0] for b in batches) == 10  # 37 frames in 4-frame chunks, the last one padded with frame 37
    assert [b[0] for b in batches] == [4, 4, 2] and all(b[1:] == (4, 3, 32, 16) for b in batches)


def test_chunked_features_equal_the_features_of_every_chunk_at_once(long_tracklet):
    torch.manual_seed(0)
    model = build_model(_config(4)).double().eval()
    chunked = extract_features(model, [long_tracklet], _config(4), sampling="dense")  # 3 batches: 4 + 4 + 2
    (clips, index), *rest = list(build_test_loader([long_tracklet], _config(64), sampling="dense"))
    assert not rest and clips.shape[0] == 10  # every chunk in one forward pass
    with torch.no_grad():
        out = model(clips.double())
    for name in _config(4).test_features:
        whole = F.normalize(out.test_feature(name).mean(dim=0, keepdim=True), dim=1)
        assert torch.allclose(chunked[name], whole, atol=1e-12, rtol=0), name
    # the chunk features really differ, so the average is over something: a wrong weighting would show
    assert not torch.allclose(out.test_feature("h+l")[0], out.test_feature("h+l")[-1])


def test_the_projected_mars_test_and_the_workers_follow_from_the_measured_rates():
    table = pd.DataFrame(
        [
            {"backbone": "tiny", "frames": 300, "frames_per_s": 50.0},
            {"backbone": "tiny", "frames": 3000, "frames_per_s": 100.0},  # the longest row is the rate used
        ]
    )
    out = dense.projection(table, gpu_ms_per_frame=(0.5,))
    assert out["ms per frame"].tolist() == pytest.approx([10.0, 0.5])
    assert out["MARS dense test (h)"].tolist() == pytest.approx([681_089 * 0.010 / 3600, 681_089 * 0.0005 / 3600])
    workers = realsize.workers_table(per_worker_clips_s=100.0, step_times=(0.05, 0.2), batch_size=16)
    assert workers["clips/s consumed"].tolist() == pytest.approx([320.0, 80.0])
    assert workers["workers to keep it fed"].tolist() == [4, 1]


def test_every_decoder_the_benchmark_compares_returns_pillows_pixels(long_tracklet):
    import numpy as np

    found = realsize.decoders()
    assert "Pillow (the loader's)" in found and "torchvision.io.decode_jpeg" in found
    reference = found["Pillow (the loader's)"](long_tracklet.frames[0])
    assert reference.shape == (32, 16, 3) and reference.dtype == np.uint8
    for name, decode in found.items():
        assert np.array_equal(decode(long_tracklet.frames[0]), reference), name


def test_the_paper_profiles_projected_time_adds_up_from_its_parts():
    from grl.bench import paper_time
    from grl.bench.projection import plan_profile, project

    flops = {"step": 1e12, "clip": 8e9, "T": 8, "batch": 16}
    row = paper_time.projected(flops, share=0.5, peak_tflops=100.0, gpus=2, loader_clips_per_worker=100.0)
    assert row["GPU step (s)"] == pytest.approx(0.02)  # 1 TFLOP at half of 100 TFLOP/s
    assert row["loader step, 4 workers (s)"] == pytest.approx(0.04) and row["workers to keep it fed"] == 8
    runs = plan_profile("paper")
    assert len(runs) == 74
    per_frame = 1e9 / 5e13  # 8 GFLOP a clip of 8 frames, at 50 TFLOP/s
    rrs = sum(paper_time.TEST_SETS[r.dataset][0] * r.seq_len for r in runs) * per_frame / 2
    slow = project(runs, 0.04, 8, 16, 2)["makespan_s"]  # the loader's step: it is the slower one
    assert row["with 4 workers (RRS test)"] == pytest.approx(slow + rrs)
    assert row["loader keeping up (RRS test)"] == pytest.approx(project(runs, 0.02, 8, 16, 2)["makespan_s"] + rrs)
    assert row["loader keeping up (dense test)"] > row["loader keeping up (RRS test)"]
