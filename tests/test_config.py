import pytest

from grl.config import Config, ConfigError


def test_defaults_are_the_paper_settings():
    c = Config()
    assert (c.seq_len, c.height, c.width, c.batch_size) == (8, 256, 128, 16)
    assert (c.lr, c.weight_decay, c.momentum, c.lr_step, c.lr_gamma, c.epochs) == (1e-3, 5e-4, 0.9, 15, 0.1, 50)
    assert c.backbone == "resnet50" and c.direction == "both" and c.oim == "v+f"


def test_key_depends_on_training_fields_only():
    c = Config()
    assert c.key() == Config().key()
    assert c.replace(seq_len=4).key() != c.key()
    assert c.replace(use_memory=False).key() != c.key()
    # where the data lives and how many workers load it do not change the result
    assert c.replace(num_workers=4, data_root="/elsewhere").key() == c.key()


def test_unknown_field_is_named():
    with pytest.raises(ConfigError, match="seqlen"):
        Config.from_dict({"seqlen": 8})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dataset": "duke"}, "dataset"),
        ({"direction": "sideways"}, "direction"),
        ({"seq_len": "8"}, "seq_len"),
        ({"batch_size": 15}, "batch_size"),
        ({"use_gce": False}, "use_trl"),
        ({"use_gce": False, "use_trl": False, "oim": "f"}, "oim"),
        ({"pretrained": 1}, "pretrained"),
    ],
)
def test_bad_values_are_refused_by_name(changes, message):
    with pytest.raises(ConfigError, match=message):
        Config().replace(**changes)


def test_int_is_accepted_for_float_fields():
    assert Config().replace(lr=1).lr == 1.0


def test_test_features_follow_the_model():
    assert Config(use_gce=False, use_trl=False, oim="v").test_features == ("g",)
    assert Config().test_features == ("l", "h", "h+l")


def test_the_cosine_schedule_anneals_the_peak_rate_to_zero_over_the_run_and_keeps_old_keys():
    import math

    import torch

    from grl.config import Config
    from grl.engine.build import build_scheduler

    step = Config(epochs=8, lr=0.1, lr_step=6, lr_gamma=0.1)
    cosine = Config(epochs=8, lr=0.1, lr_step=6, lr_gamma=0.1, lr_schedule="cosine")
    assert step.key() == Config(epochs=8, lr=0.1, lr_step=6, lr_gamma=0.1).key()  # the default leaves keys alone
    assert cosine.key() != step.key()

    def rates(config):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
        scheduler, out = build_scheduler(config, optimizer), []
        for _ in range(config.epochs):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    expected = [0.1 * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(8)]
    assert rates(cosine) == pytest.approx(expected)  # epoch 0 at the full rate, epoch 7 at 3.8 % of it
    assert rates(step) == pytest.approx([0.1] * 6 + [0.01] * 2)
    with pytest.raises(ConfigError, match="lr_schedule"):
        Config(lr_schedule="linear")
