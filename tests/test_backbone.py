"""Backbones: last stride 1, channel counts, and the clear missing-weights message."""

import pytest
import torch

from grl.models import backbone as bb
from grl.models import build_backbone
from grl.models.backbone import PretrainedWeightsError


@pytest.fixture(autouse=True)
def _one_thread():
    """On a shared 2-core machine OpenMP spinning makes small convs many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def offline_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(bb.WEIGHTS_ENV, raising=False)

    def no_network(url, dst):
        raise OSError("network unreachable")

    monkeypatch.setattr(bb, "_download", no_network)
    return tmp_path


def test_resnet50_last_stride_is_one():
    net, channels = build_backbone("resnet50", pretrained=False)
    assert channels == 2048
    assert net[-1][0].conv2.stride == (1, 1) and net[-1][0].downsample[0].stride == (1, 1)
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 256, 128)).shape == (1, 2048, 16, 8)


@pytest.mark.parametrize("name,channels", [("resnet18", 512), ("tiny", 256)])
def test_small_backbones_stride_16(name, channels):
    net, c = build_backbone(name, pretrained=False)
    assert c == channels
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 64, 32)).shape == (1, channels, 4, 2)


def test_missing_weights_message_is_clear(offline_empty_cache):
    with pytest.raises(PretrainedWeightsError) as err:
        build_backbone("resnet50", pretrained=True)
    msg = str(err.value)
    assert "resnet50-0676ba61.pth" in msg and str(offline_empty_cache / "hub" / "checkpoints") in msg
    assert bb.WEIGHTS_ENV in msg and "pretrained=False" in msg


def test_tiny_has_no_imagenet_weights():
    with pytest.raises(PretrainedWeightsError, match="pretrained=False"):
        build_backbone("tiny", pretrained=True)


def test_weights_from_env_file_and_bad_path(offline_empty_cache, monkeypatch):
    from torchvision.models import resnet18

    reference = resnet18(weights=None)
    path = offline_empty_cache / "r18.pth"
    torch.save(reference.state_dict(), path)
    monkeypatch.setenv(bb.WEIGHTS_ENV, str(path))
    net, _ = build_backbone("resnet18", pretrained=True)
    assert torch.equal(net[0].weight, reference.conv1.weight)
    monkeypatch.setenv(bb.WEIGHTS_ENV, str(offline_empty_cache / "nope.pth"))
    with pytest.raises(PretrainedWeightsError, match=bb.WEIGHTS_ENV):
        build_backbone("resnet18", pretrained=True)
