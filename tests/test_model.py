"""GRL model: each equation checked against a hand computation on small tensors."""

import pytest
import torch
import torch.nn.functional as F

from grl.config import Config
from grl.models import GRL, build_backbone, build_model, count_parameters
from grl.models.grl import (
    AttentionPooling,
    GlobalCorrelation,
    Integration,
    TemporalReciprocalLearning,
    disentangle,
)

B, T, C, H, W = 2, 3, 8, 2, 1


pytestmark = pytest.mark.usefixtures("seeded_one_thread")


def tiny_config(**kw):
    return Config(backbone="tiny", pretrained=False, height=32, width=16, seq_len=T, batch_size=4, **kw)


def maps():
    return torch.randn(B, T, C, H, W), torch.rand(B, T, C, H, W)


def copy_direction(unit, src=0, dst=1, k=2):
    """Give direction `dst` the weights of direction `src` (directions are stacked along dim 0)."""
    with torch.no_grad():
        for t in list(unit.parameters()) + [b for b in unit.buffers() if b.dim() > 0]:
            blocks = t.view(k, t.shape[0] // k, *t.shape[1:])
            blocks[dst].copy_(blocks[src])


# ---------------------------------------------------------------- GCE, eq. 1-4
def test_correlation_in_unit_interval_and_disentangle_sums_to_x():
    gce = GlobalCorrelation(C).eval()
    x = torch.randn(B, T, C, H, W)
    r = gce(x, x.mean(dim=(1, 3, 4)))
    assert r.shape == (B, T, H, W) and (r > 0).all() and (r < 1).all()
    high, low = disentangle(x, r)
    torch.testing.assert_close(high + low, x)
    torch.testing.assert_close(high, x * r[:, :, None])


def test_correlation_equals_conv_over_concatenation():
    """Eq. 2 literally: W_r([F̃^g broadcast, X_t]) → σ."""
    gce = GlobalCorrelation(C).eval()
    for bn in (gce.global_projection[1], gce.fuse_bn):
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    x = torch.randn(B, T, C, H, W)
    g = x.mean(dim=(1, 3, 4))  # eq. 1
    guide = gce.global_projection(g)[:, None, :, None, None].expand(B, T, C // 2, H, W)
    concat = torch.cat([guide, x], dim=2).flatten(0, 1)
    expected = torch.sigmoid(gce.to_map(F.relu(gce.fuse_bn(gce.fuse(concat))))).view(B, T, H, W)
    torch.testing.assert_close(gce(x, g), expected)


def test_global_feature_is_tap_gap():
    model = build_model(tiny_config(use_gce=False, use_trl=False, oim="v")).eval()
    clips = torch.randn(2, T, 3, 32, 16)
    out = model(clips)
    torch.testing.assert_close(out.global_feature, model.frame_maps(clips).mean(dim=(1, 3, 4)))
    assert out.frame_high is None and out.video_high is None and out.video_low is None and out.correlation is None
    torch.testing.assert_close(out.test_feature("g"), F.normalize(out.global_feature, dim=1))
    with pytest.raises(ValueError, match="use_gce"):
        out.test_feature("h")


# ---------------------------------------------------------------- EMU, eq. 5-8
def test_memory_starts_at_temporal_mean_and_recurs_by_hand():
    trl = TemporalReciprocalLearning(C, "forward").eval()
    high, low = maps()
    res = trl(high, low, return_memories=True)
    memory = low.mean(dim=1)  # M_0 = mean_t X^l_t
    residual = trl.unit.residual
    for t in range(T):  # M_t = Res(M_{t-1} + X^l_t), ResNet block: relu(x + F(x))
        x = memory + low[:, t]
        memory = F.relu(x + residual(x))
        torch.testing.assert_close(res.memories[:, t, 0], memory)
    torch.testing.assert_close(res.final_memory[:, 0], memory.mean(dim=(2, 3)))


def test_enhancement_attention_matches_eq_5_to_7():
    trl = TemporalReciprocalLearning(C, "forward").eval()
    unit = trl.unit
    w1, w2 = torch.randn(C // 16 or 1, C), torch.randn(C, C // 16 or 1)
    with torch.no_grad():
        unit.f1.weight.copy_(torch.eye(C)[:, :, None, None]), unit.f1.bias.zero_()
        unit.f2.weight.copy_(2 * torch.eye(C)[:, :, None, None]), unit.f2.bias.fill_(0.1)
        (
            unit.channel_weights[0].weight.copy_(w1[:, :, None, None]),
            unit.channel_weights[2].weight.copy_(w2[:, :, None, None]),
        )
    xh, m = torch.randn(4, C, H, W), torch.randn(4, C, H, W)
    d = ((F.relu(2 * m + 0.1) - F.relu(xh)) ** 2).mean(dim=(2, 3))  # eq. 5 + GAP
    a = torch.sigmoid(F.relu(d @ w1.T) @ w2.T)  # eq. 6
    torch.testing.assert_close(unit.channel_attention(xh, m), a)
    torch.testing.assert_close(unit.enhance(xh, m)[:, 0], (1 + a)[:, :, None, None] * xh)  # eq. 7
    # the TRL's F^{h}_t is GAP of eq. 7 with M_{t-1} from its own chain
    high, low = maps()
    res = trl(high, low, return_memories=True)
    previous = torch.cat([low.mean(dim=1, keepdim=True), res.memories[:, :-1, 0]], dim=1)
    for t in range(T):
        expected = unit.enhance(high[:, t], previous[:, t])[:, 0].mean(dim=(2, 3))
        torch.testing.assert_close(res.frame_high[:, t, 0], expected)


def test_backward_chain_sees_reversed_frames_and_is_realigned():
    both = TemporalReciprocalLearning(C, "both").eval()
    copy_direction(both.unit)  # same weights in both directions
    high, low = maps()
    res = both(high, low, return_memories=True)
    rev = both(high.flip(1), low.flip(1), return_memories=True)
    torch.testing.assert_close(res.frame_high[:, :, 1], rev.frame_high[:, :, 0].flip(1))
    torch.testing.assert_close(res.memories[:, :, 1], rev.memories[:, :, 0].flip(1))
    torch.testing.assert_close(res.final_memory[:, 1], rev.final_memory[:, 0])
    assert not torch.allclose(res.frame_high[:, :, 0], res.frame_high[:, :, 1])  # order matters
    # a backward-only model with those weights is the backward half of "both"
    back = TemporalReciprocalLearning(C, "backward").eval()
    with torch.no_grad():
        for (name, p), q in zip(back.unit.state_dict().items(), both.unit.state_dict().values()):
            p.copy_(q if p.dim() == 0 else q.view(2, -1, *q.shape[1:])[1])
    torch.testing.assert_close(back(high, low).frame_high[:, :, 0], res.frame_high[:, :, 1])


def test_without_memory_block_memory_is_constant_m0():
    trl = TemporalReciprocalLearning(C, "both", use_memory=False).eval()
    assert not hasattr(trl.unit, "residual")
    high, low = maps()
    res = trl(high, low, return_memories=True)
    m0 = low.mean(dim=1)
    for t in range(T):
        for k in range(2):
            torch.testing.assert_close(res.memories[:, t, k], m0)
    torch.testing.assert_close(res.final_memory[:, 0], m0.mean(dim=(2, 3)))


def test_without_enhancement_block_high_is_unchanged():
    trl = TemporalReciprocalLearning(C, "both", use_enhancement=False).eval()
    assert not any(hasattr(trl.unit, n) for n in ("f1", "f2", "channel_weights"))
    high, low = maps()
    res = trl(high, low)
    assert torch.equal(res.attention, torch.zeros_like(res.attention))
    torch.testing.assert_close(trl.unit.enhance(high[:, 0], low[:, 0].repeat(1, 2, 1, 1))[:, 1], high[:, 0])
    for k in range(2):
        torch.testing.assert_close(res.frame_high[:, :, k], high.mean(dim=(3, 4)))


# ---------------------------------------------------------------- eq. 9-10 and pooling
def _bn_identity_scale(bn):
    return 1 / (1 + bn.eps) ** 0.5  # eval BN with fresh running stats


@pytest.mark.parametrize("directions", [1, 2])
def test_integration_paper_is_fc_over_concat(directions):
    integ = Integration(C, directions, "paper").eval()
    assert integ.high[0].weight.shape == (C, directions * C)
    fh, fl = torch.randn(B, T, directions, C), torch.randn(B, directions, C)
    high, low = integ(fh, fl)
    s = _bn_identity_scale(integ.high[1])
    torch.testing.assert_close(high, fh.flatten(2) @ integ.high[0].weight.T * s)
    torch.testing.assert_close(low, fl.flatten(1) @ integ.low[0].weight.T * s)


def test_integration_release_is_sum_then_bn():
    integ = Integration(C, 2, "release").eval()
    assert sum(p.numel() for p in integ.parameters()) == 4 * C  # two BN1d, no FC
    fh, fl = torch.randn(B, T, 2, C), torch.randn(B, 2, C)
    high, low = integ(fh, fl)
    s = _bn_identity_scale(integ.high)
    torch.testing.assert_close(high, fh.sum(2) * s)
    torch.testing.assert_close(low, fl.sum(1) * s)


def test_attention_pooling_by_hand():
    pool = AttentionPooling(C).eval()
    f = torch.randn(B, T, C)
    s = _bn_identity_scale(pool.query[1])
    q = F.normalize((f @ pool.query[0].weight.T + pool.query[0].bias) * s, dim=-1)
    k = F.normalize((f @ pool.key[0].weight.T + pool.key[0].bias) * s, dim=-1)
    w = torch.softmax(q @ k.transpose(1, 2), dim=-1)
    torch.testing.assert_close(pool(f), F.normalize((w @ f).mean(1), dim=1))


# ---------------------------------------------------------------- the whole model
def test_gce_only_model_uses_gap_of_disentangled_maps():
    model = build_model(tiny_config(use_trl=False)).eval()
    assert not hasattr(model, "reciprocal")
    clips = torch.randn(2, T, 3, 32, 16)
    out = model(clips, return_memories=True)
    high, low = disentangle(model.frame_maps(clips), out.correlation)
    torch.testing.assert_close(out.frame_high, high.mean(dim=(3, 4)))
    torch.testing.assert_close(out.video_low, low.mean(dim=(1, 3, 4)))
    assert out.memory_forward is None and out.memory_backward is None


def test_full_model_outputs_and_test_features():
    model = build_model(tiny_config()).eval()
    clips = torch.randn(2, T, 3, 32, 16)
    out = model(clips)
    assert out.memory_forward is None
    assert out.frame_high.shape == (2, T, 256) and out.video_high.shape == (2, 256) and out.video_low.shape == (2, 256)
    assert out.correlation.shape == (2, T, 2, 1)
    hl = out.test_feature("h+l")
    assert hl.shape == (2, 512)
    torch.testing.assert_close(hl.norm(dim=1), torch.full((2,), 2**0.5))
    # F^g (eq. 1) of GRL's own backbone, for the backbone question of docs/convergence.md
    torch.testing.assert_close(out.test_feature("g"), F.normalize(model.frame_maps(clips).mean(dim=(1, 3, 4)), dim=1))
    mem = model(clips, return_memories=True)
    assert mem.memory_forward.shape == mem.memory_backward.shape == (2, T, 256, 2, 1)
    torch.testing.assert_close(mem.video_high, out.video_high)


def test_single_direction_model():
    model = build_model(tiny_config(direction="forward"))
    assert model.integration.high[0].weight.shape == (256, 256)
    out = model.eval()(torch.randn(2, T, 3, 32, 16), return_memories=True)
    assert out.memory_backward is None and out.memory_forward is not None


def test_channels_last_gives_same_output():
    model = build_model(tiny_config()).eval()
    clips = torch.randn(2, T, 3, 32, 16)
    ref = model(clips)
    out = model.to(memory_format=torch.channels_last)(clips)
    torch.testing.assert_close(out.test_feature("h+l"), ref.test_feature("h+l"), atol=1e-4, rtol=1e-4)


def test_trl_requires_gce_and_count_parameters():
    net, c = build_backbone("tiny", pretrained=False)
    with pytest.raises(ValueError, match="use_gce"):
        GRL(net, c, use_gce=False, use_trl=True)
    counts = count_parameters(build_model(tiny_config()))
    assert set(counts) == {"backbone", "correlation", "reciprocal", "integration", "pooling", "total"}
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
