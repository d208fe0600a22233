"""One run on several processes (torchrun, DistributedDataParallel), on CPU with gloo and 2 processes.

The runs train a tiny model in float64 on one thread per process; ``tests/ddp_worker.py`` records each
rank's losses and OIM lookup tables. With ``sync_bn`` a 2-process run is a single process's run with
the same global batch, up to the order of floating-point sums.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from tiny_data import colour_dataset

from grl.config import Config, ConfigError
from grl.data.datasets import Tracklet, VideoReIDDataset
from grl.data.loader import build_train_loader
from grl.data.sampling import PairedBatchSampler, shard_pairs
from grl.engine.distributed import check_world_size

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "ddp_worker.py"
H, W = 32, 16
CONFIG = dict(
    backbone="tiny",
    pretrained=False,
    height=H,
    width=W,
    seq_len=4,
    batch_size=8,
    epochs=2,
    steps_per_epoch=2,
    optimizer="adam",
    lr=1e-3,
    lr_step=100,
    device="cpu",
    num_workers=0,
    amp=False,
    channels_last=False,
    dtype="float64",
    threads=1,
    sync_bn=True,
)


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    """8 train ids on 2 cameras, 4 test ids; pickled for the worker processes."""
    root = tmp_path_factory.mktemp("ddp-data")
    dataset = colour_dataset(root, 8, 4)
    path = root / "dataset.pkl"
    path.write_bytes(pickle.dumps(dataset))
    return path


def _command(spec: Path, processes: int) -> list[str]:
    if processes == 1:
        return [sys.executable, str(WORKER), str(spec)]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        str(WORKER),
        str(spec),
    ]


def _env(pause: str = "") -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("GRL_FAULT_PAUSE", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    if pause:
        env["GRL_FAULT_PAUSE"] = pause
    return env


def _spec(folder: Path, dataset_file: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "config": {**CONFIG, **changes},
                "dataset": str(dataset_file),
                "out": str(folder / "run"),
                "record": str(folder / "record"),
            }
        )
    )
    return spec


def _train(folder: Path, dataset_file: Path, processes: int, **changes) -> Path:
    done = subprocess.run(
        _command(_spec(folder, dataset_file, **changes), processes),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return folder


def _record(folder: Path, rank: int, epoch: int) -> dict:
    return torch.load(folder / "record" / f"rank{rank}-epoch{epoch}.pt", weights_only=False)


def _epochs(folder: Path) -> list[dict]:
    """The logged epochs without timings."""
    return [
        {k: v for k, v in json.loads(line).items() if not k.endswith("_s") and k != "clips_per_s"}
        for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()
    ]


@pytest.fixture(scope="module")
def single(dataset_file, tmp_path_factory):
    return _train(tmp_path_factory.mktemp("single"), dataset_file, 1)


@pytest.fixture(scope="module")
def ddp(dataset_file, tmp_path_factory):
    return _train(tmp_path_factory.mktemp("ddp"), dataset_file, 2)


# ---- fast: sharding and the world-size check -------------------------------------------------


def test_shards_are_whole_pairs_that_make_up_the_batch():
    batch = list(range(8)) + [10 + i for i in range(8)]  # probes 0..7, partner of i at i + 8
    shards = [shard_pairs(batch, r, 4) for r in range(4)]
    assert shards[1] == [2, 3, 12, 13]
    for shard in shards:
        half = len(shard) // 2
        assert [p + 10 for p in shard[:half]] == shard[half:]  # the local pair layout
    assert sorted(sum(shards, [])) == sorted(batch)
    assert shard_pairs(batch, 0, 1) == batch


def test_sharded_loader_keys_are_the_global_batch(tmp_path):
    tracklets = [Tracklet((f"/x/{p}{c}.png",), p, c) for p in range(8) for c in range(2)]
    dataset = VideoReIDDataset("mars", str(tmp_path), tracklets, [], [])
    config = Config(**{**CONFIG, "batch_size": 8})
    full = build_train_loader(dataset, config, 0).batch_sampler
    shards = [build_train_loader(dataset, config, 0, rank=r, world_size=2).batch_sampler for r in range(2)]
    for whole, *parts in zip(full, *shards):
        assert sorted(sum(parts, [])) == sorted(whole)  # same (index, epoch, position): same clips as one process
        assert all(len(p) == 4 for p in parts)
    assert len(PairedBatchSampler(tracklets, 8, 0, steps=2)) == len(shards[0]) == 2


def test_a_world_size_that_splits_pairs_is_refused_by_name():
    check_world_size(8, 2)
    check_world_size(8, 4)
    check_world_size(6, 1)
    with pytest.raises(ConfigError, match=r"batch_size=6 .*world size 2.*multiple of 2 x 2 = 4"):
        check_world_size(6, 2)
    with pytest.raises(ConfigError, match=r"batch_size=8 .*world size 3.*--nproc_per_node"):
        build_train_loader(
            VideoReIDDataset("mars", "/x", [Tracklet(("/x/a.png",), 0, 0)] * 4, [], []),
            Config(**CONFIG),
            0,
            rank=0,
            world_size=3,
        )


def test_sync_bn_at_its_default_leaves_the_run_key_alone():
    from grl import config as config_mod

    assert "sync_bn" in config_mod._KEY_OMITS_DEFAULT and Config().sync_bn is False  # finished runs keep their keys
    config = Config(**CONFIG)
    assert config.replace(sync_bn=False).key() != config.key()


# ---- two processes ------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_global_batch(single, ddp):
    ref = _record(single, 0, 2)
    for rank in (0, 1):
        got = _record(ddp, rank, 2)
        assert len(got["losses"]) == 4
        np.testing.assert_allclose(got["losses"], ref["losses"], rtol=1e-10)  # every step's loss, both epochs
        for name, value in ref["model"].items():
            torch.testing.assert_close(got["model"][name], value, rtol=1e-8, atol=1e-10, msg=name)
    np.testing.assert_allclose([e["loss"] for e in _epochs(ddp)], [e["loss"] for e in _epochs(single)], rtol=1e-10)
    ours, theirs = (
        json.loads((ddp / "run" / "result.json").read_text()),
        json.loads((single / "run" / "result.json").read_text()),
    )
    assert ours["world_size"] == 2 and "world_size" not in theirs
    assert ours["key"] == theirs["key"]
    for feature, metrics in theirs["metrics"].items():
        assert ours["metrics"][feature]["mAP"] == pytest.approx(metrics["mAP"], rel=1e-9)


@pytest.mark.slow
def test_lookup_tables_are_identical_on_every_rank_and_match_one_process(single, ddp):
    for epoch in (1, 2):
        tables = [
            {k: v for k, v in _record(ddp, r, epoch)["objective"].items() if k.endswith("lookup_table")} for r in (0, 1)
        ]
        assert set(tables[0]) == {"frame_oim.lookup_table", "video_oim.lookup_table"}
        for name in tables[0]:
            assert torch.equal(tables[0][name], tables[1][name]), name  # bit for bit
            assert tables[0][name].abs().sum() > 0
            torch.testing.assert_close(
                tables[0][name], _record(single, 0, epoch)["objective"][name], rtol=1e-8, atol=1e-10
            )
    saved = torch.load(ddp / "run" / "checkpoint.pt", weights_only=False)
    assert saved["world_size"] == 2
    assert torch.equal(saved["objective"]["frame_oim.lookup_table"], tables[0]["frame_oim.lookup_table"])


@pytest.mark.slow
def test_a_ddp_run_killed_mid_epoch_resumes_to_the_uninterrupted_numbers(ddp, dataset_file, tmp_path):
    spec = _spec(tmp_path, dataset_file)
    log = tmp_path / "killed.log"
    with open(log, "w") as err:  # stop both ranks at the first step of epoch 2 (epoch 1 is checkpointed)
        proc = subprocess.Popen(
            _command(spec, 2), env=_env("train-step:3"), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
        deadline = time.time() + 180
        while log.read_text().count("FAULT-POINT train-step") < 2:
            assert proc.poll() is None, f"the run ended before its fault point:\n{log.read_text()[-3000:]}"
            assert time.time() < deadline, "fault point not reached"
            time.sleep(0.2)
        tree = psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
        for p in tree:
            p.kill()
        proc.wait()
        psutil.wait_procs(tree, timeout=10)
    assert not (tmp_path / "run" / "result.json").exists()
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["epoch"] == 1
    resumed = subprocess.run(_command(spec, 2), env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert _epochs(tmp_path) == _epochs(ddp)
    result, reference = (json.loads((f / "run" / "result.json").read_text()) for f in (tmp_path, ddp))
    assert result["metrics"] == reference["metrics"]
    for name, value in torch.load(ddp / "run" / "model.pt", weights_only=False)["state_dict"].items():
        assert torch.equal(torch.load(tmp_path / "run" / "model.pt", weights_only=False)["state_dict"][name], value), (
            name
        )


@pytest.mark.slow
def test_without_sync_bn_the_ranks_still_share_tables_and_rank_0_alone_writes(dataset_file, tmp_path):
    folder = _train(tmp_path, dataset_file, 2, sync_bn=False, epochs=1)
    tables = [_record(folder, r, 1)["objective"]["video_oim.lookup_table"] for r in (0, 1)]
    assert torch.equal(*tables)
    files = sorted(p.name for p in (folder / "run").iterdir())
    assert files == ["checkpoint.pt", "metrics.jsonl", "model.pt", "result.json", "tensorboard"]  # rank 0's
    assert len(_epochs(folder)) == 1
