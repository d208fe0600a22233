"""ClipTransform: shared random parameters within a clip, fresh ones across clips."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from grl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipParams, ClipTransform


def _frame(seed=0, size=(40, 20)):
    """A textured (asymmetric) frame, so crops and flips change pixels."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def test_train_identical_frames_stay_identical():
    transform = ClipTransform(32, 16, train=True, erase_p=1.0)
    frames = [_frame()] * 6
    for seed in range(10):
        clip = transform(frames, generator=torch.Generator().manual_seed(seed))
        assert clip.shape == (6, 3, 32, 16) and clip.dtype == torch.float32
        for t in range(1, 6):
            assert torch.equal(clip[t], clip[0]), "frames of one clip got different random parameters"


def test_parameters_differ_across_clips_and_follow_the_generator():
    transform = ClipTransform(32, 16, train=True, padding=(4, 4))  # 81 crops: collisions are unlikely
    frames = [_frame()] * 2
    clips = [transform(frames, generator=torch.Generator().manual_seed(s)) for s in range(8)]
    assert len({c.numpy().tobytes() for c in clips}) == 8
    again = transform(frames, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, clips[3])
    params = {transform.sample_params(torch.Generator().manual_seed(s)) for s in range(50)}
    assert len(params) > 40
    assert {p.flip for p in params} == {True, False}
    assert any(p.erase is None for p in params) and any(p.erase is not None for p in params)


def test_test_mode_is_deterministic_resize_and_normalise():
    transform = ClipTransform(32, 16, train=False)
    frames = [_frame(0), _frame(1)]
    a, b = transform(frames), transform(frames)
    assert torch.equal(a, b)
    expected = F.resize(torch.stack([F.pil_to_tensor(f) for f in frames]), [32, 16], antialias=True)
    expected = F.normalize(expected.float() / 255, IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(a, expected)


def test_padding_scales_with_size():
    assert ClipTransform(256, 128, train=True).padding == (10, 10)
    assert ClipTransform(128, 64, train=True).padding == (5, 5)
    assert ClipTransform(64, 32, train=True).padding == (2, 2)  # round(2.5) -> 2
    assert ClipTransform(16, 8, train=True).padding == (1, 1)  # at least one pixel


def test_apply_crop_flip_erase_do_what_the_parameters_say():
    transform = ClipTransform(8, 4, train=True, padding=(1, 1))
    clip = torch.arange(2 * 3 * 8 * 4, dtype=torch.uint8).reshape(2, 3, 8, 4)
    plain = transform.apply(clip, None)
    # centre crop of the padded image (offset = padding) without flip/erase is the identity
    torch.testing.assert_close(transform.apply(clip, ClipParams(1, 1, False, None)), plain)
    torch.testing.assert_close(transform.apply(clip, ClipParams(1, 1, True, None)), plain.flip(-1))
    # offset (0, 0): the image moves down/right by one pixel, padding (0 -> normalised) on top/left
    shifted = transform.apply(clip, ClipParams(0, 0, False, None))
    torch.testing.assert_close(shifted[..., 1:, 1:], plain[..., :-1, :-1])
    zero = F.normalize(torch.zeros(3, 1, 1), IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(shifted[..., 0, :], zero.expand(2, 3, 1, 4)[..., 0, :])
    erased = transform.apply(clip, ClipParams(1, 1, False, (2, 1, 3, 2)))
    assert torch.all(erased[..., 2:5, 1:3] == 0)
    torch.testing.assert_close(erased[..., :2, :], plain[..., :2, :])


def test_mixed_frame_sizes_and_grey_frames_are_accepted():
    transform = ClipTransform(32, 16, train=False)
    clip = transform([_frame(0, (40, 20)), _frame(1, (60, 30)).convert("L")])
    assert clip.shape == (2, 3, 32, 16)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(height=0, width=16), "height"),
        (dict(height=32, width=16, flip_p=2.0), "flip_p"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ClipTransform(train=True, **kwargs)
    with pytest.raises(ValueError, match="frames"):
        ClipTransform(8, 4, train=False)([])
