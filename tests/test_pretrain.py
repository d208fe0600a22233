"""The synthetic pretraining of the tiny backbone: disjoint population, cache, determinism, bad files."""

import logging

import pytest
import torch

from grl.config import Config
from grl.data.synthetic import make_identities, population_frames
from grl.data.synthetic.appearance import CLOTHES, outfit_pool
from grl.data.synthetic.seeds import CODES
from grl.models import build_backbone, build_model
from grl.models.backbone import PretrainedWeightsError
from grl.models.pretrain import PretrainSpec, ensure_pretrained, read_pretrained

SMALL = dict(backbone="tiny", pretrained=True, height=32, width=16, pretrain_ids=6, pretrain_steps=25, threads=1)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _palette_index(colour) -> int:
    return next(i for i, c in enumerate(CLOTHES.tolist()) if tuple(c) == tuple(colour))


def test_outfit_pools_split_the_palette():
    assert (
        outfit_pool(0, 1) == "pretraining" and outfit_pool(1, 1) == "evaluation" and outfit_pool(2, 4) == "evaluation"
    )


def test_population_is_disjoint_from_every_evaluation_set():
    frames, labels = population_frames(12, size=(32, 16))
    assert frames.dtype.name == "uint8" and frames.shape[1:] == (32, 16, 3)
    assert labels.min() == 0 and labels.max() == 11 and len(labels) == len(frames)
    population = make_identities(0, 9, 0, 12, 4, pool="pretraining")
    outfits = {(p.top, p.bottom, p.pattern, p.pattern_colour) for p in population}
    for code in CODES.values():
        for subset in (0, 1):
            evaluation = make_identities(0, code, subset, 40, 4)
            assert all(outfit_pool(_palette_index(p.top), _palette_index(p.bottom)) == "evaluation" for p in evaluation)
            assert not outfits & {(p.top, p.bottom, p.pattern, p.pattern_colour) for p in evaluation}
    assert all(outfit_pool(_palette_index(p.top), _palette_index(p.bottom)) == "pretraining" for p in population)


def test_pretraining_is_cached_deterministic_and_learns(data_dir):
    config = Config(**SMALL)
    path = ensure_pretrained(config, progress=False)
    assert path.parent == data_dir / "pretrained" and PretrainSpec.from_config(config).key() in path.name
    saved = read_pretrained(path, PretrainSpec.from_config(config))
    assert saved["final_loss"] < torch.log(torch.tensor(6.0)).item()  # below chance after 25 steps
    stamp = path.stat().st_mtime_ns
    assert ensure_pretrained(config, progress=False) == path and path.stat().st_mtime_ns == stamp  # reused
    path.unlink()
    again = read_pretrained(ensure_pretrained(config, progress=False))
    assert all(torch.equal(saved["state_dict"][k], again["state_dict"][k]) for k in saved["state_dict"])
    # The model starts from these weights; pretrained=False does not.
    model = build_model(config, path)
    first = next(iter(saved["state_dict"]))
    assert torch.equal(model.backbone.state_dict()[first], saved["state_dict"][first])
    scratch = build_model(config.replace(pretrained=False))
    assert not torch.equal(scratch.backbone.state_dict()[first], saved["state_dict"][first])


def test_bad_pretrained_files_are_rebuilt_with_a_warning(data_dir, caplog):
    config = Config(**SMALL)
    path = ensure_pretrained(config, progress=False)
    good = path.read_bytes()
    for damage, words in ((good[: len(good) // 2], "unreadable"), (b"not a checkpoint", "unreadable")):
        path.write_bytes(damage)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="grl.models.pretrain"):
            ensure_pretrained(config, progress=False)
        assert path.name in caplog.text and words in caplog.text and "rebuilding" in caplog.text
        assert read_pretrained(path, PretrainSpec.from_config(config)) is not None
    # A file made for another configuration at this name (e.g. copied over it) is not loaded.
    other = Config(**{**SMALL, "pretrain_steps": 2})
    torch.save(torch.load(ensure_pretrained(other, progress=False), weights_only=True), path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="grl.models.pretrain"):
        ensure_pretrained(config, progress=False)
    assert "made for another configuration" in caplog.text


def test_tiny_backbone_without_weights_says_what_to_do():
    with pytest.raises(PretrainedWeightsError, match="ensure_pretrained"):
        build_backbone("tiny", pretrained=True)


def test_making_the_file_leaves_the_callers_random_state_alone(data_dir):
    """A run that makes the pretrained file must initialise its own layers like one that finds it made."""
    config = Config(**{**SMALL, "pretrain_steps": 3})
    torch.manual_seed(7)
    made_here = build_model(config)  # the file does not exist yet: pretraining runs inside
    torch.manual_seed(7)
    found = build_model(config)  # now it exists
    for (name, a), b in zip(made_here.state_dict().items(), found.state_dict().values()):
        assert torch.equal(a, b), name
