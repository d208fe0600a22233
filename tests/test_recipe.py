"""The authors' release as one switch (``recipe="release"``), each of its choices on hand-made inputs.

Expected values are computed inside the tests from the definitions (numpy / explicit formulas),
not copied from the release's code or from our own modules' outputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grl.config import RECIPES, Config, ConfigError
from grl.data.sampling import rrs_indices
from grl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ClipTransform
from grl.engine.build import build_optimizer
from grl.experiments import make_run
from grl.losses import GRLObjective
from grl.losses.oim import OIMLoss
from grl.models import build_model
from grl.models.grl import AttentionPooling, GlobalCorrelation, GRLOutput

pytestmark = pytest.mark.usefixtures("seeded_one_thread")

TINY = {"backbone": "tiny", "pretrained": False, "height": 32, "width": 16}


# ---- the switch ------------------------------------------------------------------------------
def test_recipe_sets_every_release_choice_and_each_stays_a_field():
    paper = Config.from_dict(TINY)
    text = Config.from_dict({**TINY, "recipe": "paper-text"})
    release = Config.from_dict({**TINY, "recipe": "release"})
    for name, value in RECIPES["release"].items():
        assert getattr(release, name) == value, name
        assert getattr(text, name) != value or name == "eval_every", name
        # the recipe rule (docs/fidelity.md): the release's value exactly where the paper's text is silent
        assert (getattr(paper, name) == value) == (name in RECIPES["paper-text"]), name
    assert release.test_features == ("l", "h", "h+l", "l+h+mean")
    one_off = Config.from_dict({**TINY, "recipe": "release", "lambda_veri": 1.0})  # a field of its own
    assert one_off.lambda_veri == 1.0 and one_off.gce_head == "release"
    back = release.replace(recipe="paper")
    assert back.key() == paper.key() and back.integration == "paper"
    assert release.replace(recipe="paper", lambda_veri=20.0).lambda_veri == 20.0
    assert make_run("grl", "mars", "quick", recipe="release").config.rrs_chunks == "ceil"
    assert (
        make_run("grl", "mars", "quick").config.key() != make_run("grl", "mars", "quick", recipe="release").config.key()
    )


def test_unknown_recipe_lists_the_valid_ones(capsys):
    with pytest.raises(ConfigError, match=r"'recipe' must be one of \['paper', 'paper-text', 'release'\]"):
        Config.from_dict({"recipe": "authors"})
    with pytest.raises(ConfigError, match="valid recipes: paper, paper-text, release"):
        make_run("grl", "mars", "quick", recipe="authors")
    from grl.__main__ import main

    assert main(["list", "--profile", "quick", "--recipe", "authors"]) == 2
    assert "valid recipes: paper, paper-text, release" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="select_best=True needs eval_every >= 1"):
        Config.from_dict({"select_best": True})


# ---- RRS with ceil-size chunks ---------------------------------------------------------------
def test_ceil_rrs_indices():
    assert rrs_indices(10, 8, train=False, chunks="ceil") == [0, 2, 4, 6, 8, 9, 9, 9]
    assert rrs_indices(17, 8, train=False, chunks="ceil") == [0, 3, 6, 9, 12, 15, 16, 16]
    assert rrs_indices(3, 8, train=False, chunks="ceil") == [0, 1, 2, 2, 2, 2, 2, 2]
    assert rrs_indices(10, 8, train=False) == [0, 2, 4, 5, 6, 7, 8, 9]  # the balanced default differs
    rng = np.random.default_rng(0)
    for _ in range(200):  # n = 10, T = 8: chunks {0,1} {2,3} {4,5} {6,7} {8,9} {9} {9} {9}
        drawn = rrs_indices(10, 8, train=True, rng=rng, chunks="ceil")
        for t, frame in enumerate(drawn):
            assert frame in ({2 * t, 2 * t + 1} if t < 5 else {9})
    with pytest.raises(ValueError, match="chunks must be"):
        rrs_indices(10, 8, train=False, chunks="floor")


# ---- augmentation ----------------------------------------------------------------------------
def test_release_erasing_is_per_frame_with_a_random_colour_over_2_to_20_percent():
    transform = ClipTransform(40, 20, train=True, erase_p=1.0, flip_p=0.0, random_crop=False, erasing="frame")
    frames = [np.full((40, 20, 3), 128, dtype=np.uint8)] * 6
    plain = ClipTransform(40, 20, train=False)(frames)  # no crop, no flip, no erasing
    areas, colours = [], set()
    for seed in range(20):
        clip = transform(frames, generator=torch.Generator().manual_seed(seed))
        boxes = []
        for t in range(6):
            changed = (clip[t] != plain[t]).any(dim=0)  # (H,W)
            rows, cols = changed.any(dim=1).nonzero().flatten(), changed.any(dim=0).nonzero().flatten()
            assert len(rows) and int(changed.sum()) == len(rows) * len(cols)  # one rectangle per frame
            areas.append(int(changed.sum()) / (40 * 20))
            box = clip[t][:, changed].T  # (pixels, 3): one colour
            assert torch.allclose(box, box[0].expand_as(box))
            rgb = box[0] * torch.tensor(IMAGENET_STD) + torch.tensor(IMAGENET_MEAN)  # back to [0, 1]
            assert (rgb >= -1e-6).all() and (rgb <= 1 + 1e-6).all()
            colours.add(tuple(rgb.round(decimals=3).tolist()))
            boxes.append((rows.min().item(), cols.min().item(), len(rows), len(cols)))
        assert len(set(boxes)) > 1  # frames are erased independently
    # rounding a box's sides to whole pixels moves the area a little around the 2-20 % range
    assert 0.015 <= min(areas) and max(areas) <= 0.23 and max(areas) > 0.1
    assert len(colours) > 50


def test_no_random_crop_keeps_the_frame_in_place():
    frames = [np.random.default_rng(t).integers(0, 255, (32, 16, 3), dtype=np.uint8) for t in range(3)]
    transform = ClipTransform(32, 16, train=True, erase_p=0.0, flip_p=0.0, random_crop=False)
    expected = ClipTransform(32, 16, train=False)(frames)
    for seed in range(5):
        assert torch.equal(transform(frames, generator=torch.Generator().manual_seed(seed)), expected)


# ---- GCE as the release builds it ------------------------------------------------------------
def test_release_gce_structure_and_output_on_fixed_weights():
    C = 8  # C/2 = 4, C/8 = 1
    gce = GlobalCorrelation(C, head="release").eval()
    assert gce.global_projection[0].bias is not None
    convs = [m for m in gce.to_map.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in [gce.fuse, *convs]] == [(12, 4), (4, 1), (1, 1)]
    assert isinstance(gce.to_map[-1], torch.nn.BatchNorm2d)  # the final BN before the sigmoid
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in gce.parameters():
            p.copy_(torch.from_numpy(rng.normal(size=p.shape) * 0.5))
        for bn in (m for m in gce.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
            bn.running_mean.copy_(torch.from_numpy(rng.normal(size=bn.running_mean.shape) * 0.1))
            bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, size=bn.running_var.shape)))
    frames = torch.from_numpy(rng.normal(size=(1, 2, C, 3, 2)))  # (B,T,C,h,w)
    global_feature = torch.from_numpy(rng.normal(size=(1, C)))
    gce = gce.double()
    R = gce(frames, global_feature).detach().numpy()

    def bn(x, m, axis=0):  # eval-mode BatchNorm over channel axis `axis`
        shape = [1] * x.ndim
        shape[axis] = -1
        p = {
            k: v.detach().numpy().reshape(shape)
            for k, v in (("w", m.weight), ("b", m.bias), ("m", m.running_mean), ("v", m.running_var))
        }
        return (x - p["m"]) / np.sqrt(p["v"] + m.eps) * p["w"] + p["b"]

    lin, bn1 = gce.global_projection[0], gce.global_projection[1]
    guide = np.maximum(bn(lin.weight.detach().numpy() @ global_feature[0].numpy() + lin.bias.detach().numpy(), bn1), 0)
    expected = np.zeros((2, 3, 2))
    for t in range(2):
        for y in range(3):
            for x in range(2):
                cat = np.concatenate([guide, frames[0, t, :, y, x].numpy()])  # [F~g, X_t] at one pixel
                h1 = bn(gce.fuse.weight.detach().numpy()[:, :, 0, 0] @ cat, gce.fuse_bn)  # no ReLU here
                h2 = np.maximum(bn(convs[0].weight.detach().numpy()[:, :, 0, 0] @ h1, gce.to_map[1]), 0)
                h3 = bn(convs[1].weight.detach().numpy()[:, :, 0, 0] @ h2, gce.to_map[4])
                expected[t, y, x] = 1 / (1 + math.exp(-h3[0]))
    np.testing.assert_allclose(R[0], expected, rtol=1e-10)


# ---- attentive pooling -----------------------------------------------------------------------
def test_release_pooling_pools_normalised_frames():
    pool = AttentionPooling(4, inner=4, normalize_input=True)
    with torch.no_grad():
        for p in pool.parameters():
            p.zero_()  # Q = K = 0 → uniform attention weights 1/T
    frames = torch.tensor([[[3.0, 0, 0, 0], [0, 1.0, 0, 0]]])  # (B=1,T=2,D=4), norms 3 and 1
    pool.eval()
    expected = F.normalize(torch.tensor([[0.5, 0.5, 0, 0]]), dim=1)  # mean of the unit vectors
    assert torch.allclose(pool(frames), expected)
    raw = AttentionPooling(4, inner=4).eval()
    with torch.no_grad():
        for p in raw.parameters():
            p.zero_()
    assert torch.allclose(raw(frames), F.normalize(torch.tensor([[1.5, 0.5, 0, 0]]), dim=1))


def _hand_set_pooling(normalize_input: bool) -> AttentionPooling:
    """D=2, inner=2, eval mode, BN the identity; Q = x·diag(1, 2) + (0.5, -1), K = x + (1, 0.3).

    The biases matter: without them L2norm(W x) would not see x's norm at all."""
    pool = AttentionPooling(2, inner=2, normalize_input=normalize_input).eval().double()
    with torch.no_grad():
        pool.query[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        pool.key[0].weight.copy_(torch.eye(2))
        pool.query[0].bias.copy_(torch.tensor([0.5, -1.0], dtype=torch.float64))
        pool.key[0].bias.copy_(torch.tensor([1.0, 0.3], dtype=torch.float64))
        for bn in (pool.query[1], pool.key[1]):
            bn.running_mean.zero_(), bn.running_var.fill_(1.0 - bn.eps), bn.weight.fill_(1.0), bn.bias.zero_()
    return pool


def _pooling_by_hand(x: list[list[float]], normalize: bool) -> np.ndarray:
    """The release's self-attention pooling of one clip, written out: every step on x (normalised or not)."""
    x = np.asarray(x, dtype=np.float64)
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    q, k = unit(x @ np.diag([1.0, 2.0]) + [0.5, -1.0]), unit(x + [1.0, 0.3])
    logits = q @ k.T
    weights = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return unit((weights @ x).mean(0))


def test_release_pooling_reads_normalised_frames_in_query_key_and_values():
    frames = [[3.0, 1.0], [0.5, 2.0], [1.0, -4.0]]  # (T=3, D=2) of very different norms
    clip = torch.tensor([frames], dtype=torch.float64)
    release = _hand_set_pooling(True)(clip)[0].detach().numpy()
    np.testing.assert_allclose(release, _pooling_by_hand(frames, normalize=True), rtol=1e-12)
    # The old behaviour (projections of the raw frames, values normalised) is a different number here.
    x = np.asarray(frames)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    logits = unit(x @ np.diag([1.0, 2.0]) + [0.5, -1.0]) @ unit(x + [1.0, 0.3]).T
    w = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.abs(release - unit((w @ unit(x)).mean(0))).max() > 1e-3


def test_paper_pooling_reads_raw_frames_unchanged():
    frames = [[3.0, 1.0], [0.5, 2.0], [1.0, -4.0]]
    clip = torch.tensor([frames], dtype=torch.float64)
    paper = _hand_set_pooling(False)(clip)[0].detach().numpy()
    np.testing.assert_allclose(paper, _pooling_by_hand(frames, normalize=False), rtol=1e-12)


def test_release_pooling_batchnorm_statistics_per_half_batch():
    torch.manual_seed(0)
    pool = AttentionPooling(3, inner=2, bn_halves=True).train()
    frames = torch.randn(4, 2, 3) * torch.tensor([1.0, 5.0, 0.2])  # B=4: halves are clips 0-1 and 2-3
    pooled = pool(frames)

    def normalised_projection(layer, x):  # explicit train-mode BN over the rows of x
        z = x @ layer[0].weight.T + layer[0].bias
        z = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + layer[1].eps) * layer[1].weight + layer[1].bias
        return F.normalize(z, dim=1)

    flat = frames.reshape(8, 3)
    q = torch.cat([normalised_projection(pool.query, flat[:4]), normalised_projection(pool.query, flat[4:])]).view(
        4, 2, -1
    )
    k = torch.cat([normalised_projection(pool.key, flat[:4]), normalised_projection(pool.key, flat[4:])]).view(4, 2, -1)
    expected = F.normalize((torch.softmax(q @ k.transpose(1, 2), -1) @ frames).mean(1), dim=1)
    assert torch.allclose(pooled, expected, atol=1e-6)
    whole = AttentionPooling(3, inner=2).train()
    whole.load_state_dict(
        {k: v for k, v in pool.state_dict().items() if "running" not in k and "num_batches" not in k}, strict=False
    )
    assert not torch.allclose(whole(frames), pooled, atol=1e-4)  # statistics of the whole batch differ


# ---- features and losses ---------------------------------------------------------------------
def test_release_test_feature_is_the_three_normalised_parts():
    frame_high = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])  # (B=1,T=2,D=2): mean_t = (1, 1)
    out = GRLOutput(
        torch.zeros(1, 2),
        frame_high=frame_high,
        video_high=torch.tensor([[0.0, 5.0]]),
        video_low=torch.tensor([[3.0, 4.0]]),
    )
    s = 1 / math.sqrt(2)
    assert torch.allclose(out.test_feature("l+h+mean"), torch.tensor([[0.6, 0.8, 0.0, 1.0, s, s]]))


def _oim_logits_and_update(table, x, labels, scale=30.0, momentum=0.5):
    """OIM by its definition (eq. 12-13): logits, CE, then LUT[y] ← normalize(m·LUT[y] + (1−m)·x̂) in order."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    logits = scale * xn @ table.T
    ce = np.mean([np.log(np.exp(row - row.max()).sum()) + row.max() - row[y] for row, y in zip(logits, labels)])
    table = table.copy()
    for v, y in zip(xn, labels):
        t = momentum * table[y] + (1 - momentum) * v
        table[y] = t / np.linalg.norm(t)
    return ce, table


def test_release_loss_weights_and_the_pooled_oim_on_the_frame_table():
    config = Config.from_dict({**TINY, "recipe": "release"})
    objective = GRLObjective(config, num_classes=3, dims=4).double().train()
    assert objective.lambdas["verification"] == 20.0 and objective.oim_pooled
    rng = np.random.default_rng(1)
    B, T, D = 4, 2, 4
    out = GRLOutput(
        torch.zeros(B, D, dtype=torch.float64),
        frame_high=torch.from_numpy(rng.normal(size=(B, T, D))),
        video_high=torch.from_numpy(rng.normal(size=(B, D))),
        video_low=torch.from_numpy(rng.normal(size=(B, D))),
    )
    pids = torch.tensor([0, 1, 0, 2])
    start = rng.normal(size=(3, D))
    start /= np.linalg.norm(start, axis=1, keepdims=True)
    objective.frame_oim.lookup_table.copy_(torch.from_numpy(start))
    objective.video_oim.lookup_table.copy_(torch.from_numpy(start[::-1].copy()))
    total, parts = objective(out, pids)
    # Both frame-table terms score against the table before this step (the release updates it in backward, the
    # pooled update first); scoring the pooled term against the frame-updated table was a defect.
    pooled_ce, table = _oim_logits_and_update(start, out.video_high.numpy(), pids.numpy())
    frame_ce, _ = _oim_logits_and_update(start, out.frame_high.reshape(B * T, D).numpy(), np.repeat(pids.numpy(), T))
    _, table = _oim_logits_and_update(table, out.frame_high.reshape(B * T, D).numpy(), np.repeat(pids.numpy(), T))
    video_ce, _ = _oim_logits_and_update(start[::-1].copy(), out.video_low.numpy(), pids.numpy())
    assert parts["frame_oim"] == pytest.approx(frame_ce) and parts["video_oim"] == pytest.approx(video_ce)
    assert parts["pooled_oim"] == pytest.approx(pooled_ce)
    expected = frame_ce + video_ce + pooled_ce + 20.0 * parts["verification"]
    assert float(total.detach()) == pytest.approx(expected)
    np.testing.assert_allclose(objective.frame_oim.lookup_table.numpy(), table, atol=1e-12)
    v_only = GRLObjective(Config.from_dict({**TINY, "recipe": "release", "oim": "v"}), 3, 4)
    assert not v_only.oim_pooled  # no frame-level table to share


def test_oim_logits_and_table_stay_fp32_under_autocast():
    oim = OIMLoss(5, 64)
    table = F.normalize(torch.randn(5, 64), dim=1)
    oim.lookup_table.copy_(table)
    x = torch.randn(8, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = oim.logits(x.to(torch.bfloat16))
        low = 30 * F.normalize(x, dim=1).to(torch.bfloat16) @ table.to(torch.bfloat16).t()  # what bf16 would give
        oim.train()(x.to(torch.bfloat16), torch.arange(8) % 5)
    exact = 30 * F.normalize(x.to(torch.bfloat16).float(), dim=1) @ table.t()
    assert logits.dtype == torch.float32 and torch.allclose(logits, exact, atol=1e-5)
    assert (low.float() - exact).abs().max() > 1e-3  # the precision the fp32 path keeps
    assert oim.lookup_table.dtype == torch.float32


def test_release_new_layers_learn_at_twice_the_rate_and_gce_at_the_backbones():
    config = Config.from_dict({**TINY, "recipe": "release"})
    model = build_model(config)
    objective = GRLObjective(config, 3, model.dims)
    groups = build_optimizer(config, model, objective).param_groups
    assert [g["lr"] for g in groups] == [config.lr, 2 * config.lr]
    gce = {id(p) for p in model.correlation.parameters()}
    assert gce <= {id(p) for p in groups[0]["params"]} and not gce & {id(p) for p in groups[1]["params"]}
    paper = build_optimizer(config.replace(gce_lr_as_backbone=False), model, objective).param_groups
    assert gce <= {id(p) for p in paper[1]["params"]}  # without the switch GCE is a new layer


def test_switches_added_later_leave_finished_runs_keys_alone():
    import hashlib
    import json

    from grl.config import _KEY_OMITS_DEFAULT, _NOT_IN_KEY

    paper = Config.from_dict({**TINY, **RECIPES["paper-text"]})  # the defaults before the recipe rule
    # the key as it was computed before these switches existed: none of them in the payload
    old = {k: v for k, v in paper.to_dict().items() if k not in _NOT_IN_KEY and k not in _KEY_OMITS_DEFAULT}
    assert paper.key() == hashlib.sha1(json.dumps(old, sort_keys=True).encode()).hexdigest()[:12]
    for name, value in RECIPES["release"].items():
        if name in _KEY_OMITS_DEFAULT:
            assert Config.from_dict({**TINY, name: value, "eval_every": 1}).key() != paper.key(), name


def test_release_pooling_fix_gives_release_runs_new_keys():
    # Keys of these configurations before the pooling's query and key read the normalised F^h (docs/fidelity.md):
    # a run trained then must never be taken for one of the corrected model.
    assert Config.from_dict({"recipe": "release"}).key() != "138b0274c397"
    assert Config.from_dict({"pool_normalized": True}).key() != "0f582a1cd7dc"
    assert Config.from_dict(RECIPES["paper-text"]).key() == "ee8cf3621569"  # the paper's text: key unchanged


def test_the_recipe_rule_as_default_never_takes_a_key_of_the_old_default():
    # erasing and the pooling's switches changed their default with the recipe rule: a run at the new default must
    # not be keyed like a finished run at the old one, and the old one keeps its key.
    rule, text = Config.from_dict(TINY), Config.from_dict({**TINY, **RECIPES["paper-text"]})
    assert (rule.lambda_veri, rule.erasing, rule.pool_normalized, rule.pool_bn_halves) == (20.0, "frame", True, True)
    assert rule.key() != text.key()
    for name, old in RECIPES["paper-text"].items():
        assert rule.replace(**{name: old}).key() != rule.key(), name
        assert text.replace(**{name: getattr(rule, name)}).key() != text.key(), name
    explicit = Config.from_dict({**TINY, **{k: getattr(rule, k) for k in RECIPES["paper-text"]}})
    assert explicit.key() == rule.key()  # the rule's runs trained before it became the default are reused
    assert rule.replace(recipe="paper-text").key() != rule.key()
    assert rule.replace(recipe="paper-text").erasing == "clip"


def test_pooled_oim_fix_gives_its_runs_new_keys():
    # Keys before the pooled OIM scored against the frame table before this step's updates (docs/fidelity.md).
    assert Config.from_dict({"oim_pooled": True}).key() != "2f3874aae2f4"
    assert Config.from_dict({"oim_pooled": True}).key() != Config.from_dict({}).key()
