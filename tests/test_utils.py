import json
import os

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
