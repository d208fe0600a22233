"""Common random numbers (Config.crn): what two arms of an ablation share, and what they do not."""

from __future__ import annotations

import torch

from grl.config import Config
from grl.data.loader import ClipDataset
from grl.data.transforms import ClipTransform
from grl.losses import GRLObjective
from grl.models import build_model
from grl.utils import seed_layers_by_name
from tests.tiny_data import colour_dataset


class _Recorder(ClipTransform):
    """Records the seed of the generator each clip's transform is drawn from."""

    seeds: list

    def transform_resized(self, clip, generator=None):
        self.seeds.append(generator.initial_seed())
        return super().transform_resized(clip, generator)


def _augment_seeds(tracklets, seq_len: int, crn: bool) -> list[int]:
    config = Config(height=32, width=16, seq_len=seq_len)
    transform = _Recorder.for_config(config, train=True)
    transform.seeds = []
    clips = ClipDataset(tracklets, seq_len, transform, mode="train", seed=3, crn=crn)
    for key in [(0, 0, 0), (1, 0, 1), (2, 1, 5)]:
        clips[key]
    return transform.seeds


def test_crn_gives_arms_with_other_T_the_same_augmentation(tmp_path):
    tracklets = colour_dataset(tmp_path, 3, 1).train
    assert _augment_seeds(tracklets, 4, crn=True) == _augment_seeds(tracklets, 8, crn=True)
    # Without it the frame draw and the augmentation share one stream: another T, another augmentation.
    assert _augment_seeds(tracklets, 4, crn=False) != _augment_seeds(tracklets, 8, crn=False)


def _new_layers(config: Config):
    torch.manual_seed(config.seed)
    model = build_model(config.replace(pretrained=False))
    objective = GRLObjective(config, 10, model.dims)
    if config.crn:
        seed_layers_by_name(model, config.seed, skip=("backbone",))
        seed_layers_by_name(objective, config.seed, prefix="objective.")
    return model, objective


def test_crn_starts_shared_layers_alike_in_two_arms():
    base = Config(backbone="tiny", pretrained=False, height=32, width=16, crn=True, seed=1)
    full, _ = _new_layers(base)
    no_memory, _ = _new_layers(base.replace(use_memory=False))
    pooling = "integration.high.0.weight"  # built after the memory block, which "- Memory" lacks
    assert torch.equal(full.state_dict()[pooling], no_memory.state_dict()[pooling])
    assert torch.equal(full.state_dict()["backbone.0.weight"], no_memory.state_dict()["backbone.0.weight"])
    other_seed, _ = _new_layers(base.replace(seed=2))
    assert not torch.equal(full.state_dict()[pooling], other_seed.state_dict()[pooling])
    # Without crn the arms draw their layers from one stream in build order: the shared layer differs.
    plain, _ = _new_layers(base.replace(crn=False))
    plain_no_memory, _ = _new_layers(base.replace(crn=False, use_memory=False))
    assert not torch.equal(plain.state_dict()[pooling], plain_no_memory.state_dict()[pooling])


def test_seed_layers_by_name_leaves_skipped_layers_and_the_global_stream_alone():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    kept = net[0].weight.clone()
    state = torch.random.get_rng_state()
    assert seed_layers_by_name(net, 5, skip=("0",)) == 1
    assert torch.equal(net[0].weight, kept)
    assert torch.equal(torch.random.get_rng_state(), state)
    again = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    seed_layers_by_name(again, 5)
    assert torch.equal(again[1].weight, net[1].weight)
