import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from grl.utils import atomic_torch_save, atomic_write_json


def test_atomic_json_roundtrip_and_no_leftovers(tmp_path):
    target = tmp_path / "sub" / "result.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_atomic_files_get_normal_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "r.json", {})
        atomic_torch_save({"x": torch.zeros(1)}, tmp_path / "c.pt")
    finally:
        os.umask(mask)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.json"
    atomic_write_json(target, {"ok": True})
    try:
        atomic_write_json(target, {"bad": object()})
    except TypeError:
        pass
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


_TRAINING = """
import hashlib, resource, torch
from grl.utils import keep_freed_memory
print(keep_freed_memory())
torch.manual_seed(0)
torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
                          torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for step in range(6):  # activations of 64 MB: above glibc's mmap threshold, so the setting decides where they live
    if step == 3:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    loss = net(torch.randn(64, 3, 64, 64)).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters())).hexdigest())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_kept_freed_memory_saves_page_faults_and_changes_no_number():
    # Fresh processes: the setting is process-wide.
    runs = {}
    for mode in ("0", "1"):
        out = subprocess.run(
            [sys.executable, "-c", _TRAINING],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "GRL_KEEP_FREED_MEMORY": mode},
        ).stdout.split()
        runs[mode] = (out[0], int(out[1]), out[2])
    (off, faults_default, weights_default), (on, faults_kept, weights_kept) = runs["0"], runs["1"]
    assert (off, on) == ("False", "True")
    # glibc's default unmaps every freed activation and faults it in again on the next step (64 MB:
    # 16,384 pages of 4 KiB, or 32 of 2 MiB where transparent huge pages are always on); kept, it is reused.
    assert faults_default >= 3 * 32 and faults_kept * 20 < faults_default
    assert weights_kept == weights_default and len(weights_kept) == 64
