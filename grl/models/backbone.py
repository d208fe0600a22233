"""Frame-level feature extractors (paper §3.2, §4.2): ``build_backbone(name, pretrained) -> (module, C)``.

* ``"resnet50"`` — torchvision ResNet-50 with the last spatial down-sampling removed
  (layer4 stride 1, as in the paper's §4.2 following [25]); C = 2048, 256×128 → 16×8.
* ``"resnet18"`` — likewise; C = 512.
* ``"tiny"`` — a narrow ResNet of BasicBlocks (widths 32/64/128/256, total stride 16, last
  stage stride 1); C = 256. The CPU profiles' backbone: ``pretrained=True`` loads the weights
  :mod:`grl.models.pretrain` makes on synthetic people (``weights_path``), ``False`` trains from scratch.

The module maps ``(N, 3, H, W)`` to ``(N, C, H/16, W/16)``; avgpool and fc are removed.

ImageNet weights (``pretrained=True``) are looked up, in order, at
``weights_path`` → the file named by the environment variable ``GRL_PRETRAINED_WEIGHTS`` →
torchvision's cache ``<torch.hub.get_dir()>/checkpoints/<file>`` → a download from
torchvision's URL (only works with a network). When all fail, one :class:`PretrainedWeightsError`
says where to put the file, which variable to set, and that ``pretrained=False`` is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock

WEIGHTS_ENV = "GRL_PRETRAINED_WEIGHTS"
# Every backbone here maps an H×W frame to an (H/16)×(W/16) feature map (last stage stride 1): where R_t and M_t live.
TOTAL_STRIDE = 16

_TORCHVISION = {
    "resnet50": (resnet.resnet50, resnet.ResNet50_Weights.IMAGENET1K_V1),
    "resnet18": (resnet.resnet18, resnet.ResNet18_Weights.IMAGENET1K_V1),
}
BACKBONE_NAMES = (*_TORCHVISION, "tiny")


class PretrainedWeightsError(FileNotFoundError):
    """ImageNet weights were asked for but cannot be found or loaded; the message says what to do."""


def build_backbone(name: str, pretrained: bool, weights_path: str | os.PathLike | None = None) -> tuple[nn.Module, int]:
    """Return ``(backbone, channels)``; the backbone maps (N,3,H,W) → (N,C,H/16,W/16)."""
    if name == "tiny":
        net = TinyResNet()
        if pretrained:
            net.load_state_dict(_load_tiny_state(weights_path))
        return net, TinyResNet.channels
    if name not in _TORCHVISION:
        raise ValueError(f"unknown backbone {name!r}; expected one of {list(BACKBONE_NAMES)}")
    factory, weights = _TORCHVISION[name]
    net = factory(weights=None)
    if pretrained:
        net.load_state_dict(_load_imagenet_state(name, weights, weights_path))
    _remove_last_stride(net)
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return trunk, net.fc.in_features


def _remove_last_stride(net: resnet.ResNet) -> None:
    """Last stride 1 (§4.2): every stride-2 conv of layer4's first block (conv2 for Bottleneck,
    conv1 for BasicBlock) and its down-sampling shortcut get stride 1."""
    block = net.layer4[0]
    for conv in (block.conv1, block.conv2, block.downsample[0]):
        conv.stride = (1, 1)


# ---------------------------------------------------------------- ImageNet weights
def _cache_file(weights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _download(url: str, dst: Path) -> None:
    """Fetch ``url`` to ``dst`` (torchvision's own mirror); raises OSError without a network."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst), progress=False)


def _load_imagenet_state(name: str, weights, weights_path) -> dict:
    explicit = weights_path or os.environ.get(WEIGHTS_ENV) or None
    cache = _cache_file(weights)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            source = "weights_path" if weights_path else f"environment variable {WEIGHTS_ENV}"
            raise PretrainedWeightsError(
                f"{source} points to {str(path)!r}, which is not a file (ImageNet weights for {name})."
            )
    elif cache.is_file():
        path = cache
    else:
        try:
            _download(weights.url, cache)
        except Exception as err:  # no network (URLError, socket errors, HTTP errors ...)
            raise PretrainedWeightsError(
                f"ImageNet weights for backbone {name!r} not found and could not be downloaded ({type(err).__name__}: {err}). "
                f"Put the file {cache.name} (from {weights.url}) at {cache} (torchvision's cache), "
                f"or set the environment variable {WEIGHTS_ENV}=/path/to/{cache.name}, "
                f"or pass weights_path; or train from scratch explicitly with pretrained=False."
            ) from err
        path = cache
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise PretrainedWeightsError(f"cannot read ImageNet weights for {name!r} from {str(path)!r}: {err}") from err
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _load_tiny_state(weights_path) -> dict:
    if weights_path is None:
        raise PretrainedWeightsError(
            "backbone 'tiny' has no ImageNet weights: its pretrained weights are made on synthetic people by "
            "grl.models.pretrain.ensure_pretrained(config) (grl.models.build_model calls it) and passed as weights_path. "
            "Or train from scratch with pretrained=False (config field 'pretrained')."
        )
    try:
        saved = torch.load(weights_path, map_location="cpu", weights_only=True)
        return saved["state_dict"] if isinstance(saved, dict) and "state_dict" in saved else saved
    except Exception as err:
        raise PretrainedWeightsError(
            f"cannot read the tiny backbone's pretrained weights from {str(weights_path)!r}: {err}"
        ) from err


# ---------------------------------------------------------------- tiny backbone
class TinyResNet(nn.Sequential):
    """Narrow ResNet for CPU runs: stem (conv3×3/2, maxpool/2), then one BasicBlock per stage
    with widths 32/64/128/256 and strides 1/2/2/1 (last stride 1 as the big backbones) —
    total stride 16, C = 256."""

    channels = 256
    widths = (32, 64, 128, 256)
    strides = (1, 2, 2, 1)

    def __init__(self) -> None:
        stem = [
            nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        stages, in_ch = [], 32
        for width, stride in zip(self.widths, self.strides):
            shortcut = None
            if stride != 1 or in_ch != width:
                shortcut = nn.Sequential(nn.Conv2d(in_ch, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
            stages.append(BasicBlock(in_ch, width, stride=stride, downsample=shortcut))
            in_ch = width
        super().__init__(*stem, *stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
