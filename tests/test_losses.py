"""Losses (eq. 11-14) on hand-made vectors, gradients of every parameter, and a falling loss."""

import time

import pytest
import torch
import torch.nn.functional as F

from grl.config import Config
from grl.losses import (
    GRLObjective,
    OIMLoss,
    VerificationHead,
    pair_labels,
    soft_margin_triplet_loss,
    split_pairs,
    verification_loss,
)
from grl.models import build_model

pytestmark = pytest.mark.usefixtures("seeded_one_thread")


def tiny_config(**kw):
    base = dict(backbone="tiny", pretrained=False, height=32, width=16, seq_len=4, batch_size=8)
    return Config(**{**base, **kw})


# ---------------------------------------------------------------- OIM, eq. 12-13
def test_oim_logits_and_lookup_update_follow_the_formula():
    oim = OIMLoss(3, 2, scale=30.0, momentum=0.5)
    assert torch.equal(oim.lookup_table, torch.zeros(3, 2))
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    oim.lookup_table.copy_(table)
    x = torch.tensor([[3.0, 4.0], [0.0, -2.0], [1.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 2, 0])
    xn = torch.tensor([[0.6, 0.8], [0.0, -1.0], [2**-0.5, 2**-0.5]])
    torch.testing.assert_close(oim.logits(x), 30 * xn @ table.T)
    loss = oim(x, y)
    logits = 30 * xn @ table.T
    expected = -(logits.log_softmax(1)[torch.arange(3), y]).mean()
    torch.testing.assert_close(loss, expected)
    # sample by sample, in order: LUT[y] <- normalize(0.5 LUT[y] + 0.5 normalize(x))
    ref = table.clone()
    for xi, yi in zip(xn, y):
        ref[yi] = F.normalize(0.5 * ref[yi] + 0.5 * xi, dim=0)
    torch.testing.assert_close(oim.lookup_table, ref)
    loss.backward()  # the update did not disturb the graph
    assert x.grad.abs().sum() > 0
    oim.eval()
    before = oim.lookup_table.clone()
    oim(x, y)
    assert torch.equal(oim.lookup_table, before)  # no update at eval


def test_oim_under_bf16_autocast_keeps_fp32_logits_and_the_fp32_table_update():
    """The GPU path's bf16 autocast: logits come out float32, the table stays float32, and its update equals
    the fp32 update on the same features (the bf16 features' values, promoted)."""
    table = F.normalize(torch.randn(6, 32), dim=1)
    feats = torch.randn(10, 32).to(torch.bfloat16)
    labels = torch.tensor([0, 1, 2, 0, 3, 1, 0, 5, 5, 2])
    amp, ref = OIMLoss(6, 32).train(), OIMLoss(6, 32).train()
    amp.lookup_table.copy_(table)
    ref.lookup_table.copy_(table)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = amp.logits(feats)
        loss = amp(feats, labels)
    ref_logits = ref.logits(feats.float())
    ref_loss = ref(feats.float(), labels)
    assert logits.dtype == torch.float32 and loss.dtype == torch.float32
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(loss, ref_loss)
    assert amp.lookup_table.dtype == torch.float32
    torch.testing.assert_close(amp.lookup_table, ref.lookup_table, rtol=0, atol=0)  # bit-identical update
    assert not torch.equal(amp.lookup_table, table)  # it did update


def test_oim_update_vectorised_equals_loop_with_many_repeats():
    oim = OIMLoss(5, 6, momentum=0.3)
    x, y = torch.randn(40, 6), torch.randint(0, 5, (40,))
    ref = torch.zeros(5, 6)
    for xi, yi in zip(F.normalize(x, dim=1), y):
        ref[yi] = F.normalize(0.3 * ref[yi] + 0.7 * xi, dim=0)
    oim(x, y)
    torch.testing.assert_close(oim.lookup_table, ref)


# ---------------------------------------------------------------- verification, eq. 11
def test_verification_pairs_and_labels_of_a_paired_batch():
    pids = torch.tensor([3, 5, 7, 3, 5, 9])
    feats = torch.randn(6, 4)
    p, g, pp, gp = split_pairs(feats, pids)
    assert torch.equal(p, feats[:3]) and torch.equal(g, feats[3:])
    assert pair_labels(pp, gp).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    head = VerificationHead(4)
    prob = head(p, g)
    assert prob.shape == (3, 3) and ((prob > 0) & (prob < 1)).all()
    # [p_j, g_k] is a function of (p_j - g_k)^2 only
    logits = head.classifier(head.bn(((p[:, None] - g[None]) ** 2).flatten(0, 1)))
    torch.testing.assert_close(prob.flatten(), logits.softmax(1)[:, 1])
    y = pair_labels(pp, gp).float()
    bce = -(y * prob.log() + (1 - y) * (1 - prob).log()).mean()  # eq. 11 over all J = 9 pairs
    torch.testing.assert_close(verification_loss(head, p, g, pp, gp), bce)


def test_soft_margin_triplet_by_hand():
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 5.0]])
    pids = torch.tensor([0, 0, 1, 1])
    # anchor 0: hp 1, hn 3; anchor 1: hp 1, hn sqrt(10); anchor 2: hp 2, hn 3; anchor 3: hp 2, hn 5
    hp = torch.tensor([1.0, 1.0, 2.0, 2.0])
    hn = torch.tensor([3.0, 10**0.5, 3.0, 5.0])
    torch.testing.assert_close(soft_margin_triplet_loss(f, pids), F.softplus(hp - hn).mean())


# ---------------------------------------------------------------- objective, eq. 14
@pytest.mark.parametrize("oim,keys", [("v", {"video_oim"}), ("f", {"frame_oim"}), ("v+f", {"video_oim", "frame_oim"})])
def test_objective_terms_follow_table6_switches(oim, keys):
    cfg = tiny_config(oim=oim, lambda_frame=0.5, lambda_video=2.0, lambda_veri=3.0, use_triplet=True)
    model = build_model(cfg)
    objective = GRLObjective(cfg, 4, model.dims)
    pids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    for _ in range(2):  # second pass: lookup tables filled
        total, parts = objective(model(torch.randn(8, 4, 3, 32, 16)), pids)
    assert set(parts) == keys | {"verification", "triplet", "total"}
    lam = {"frame_oim": 0.5, "video_oim": 2.0, "verification": 3.0, "triplet": 1.0}
    assert parts["total"] == pytest.approx(sum(lam[k] * v for k, v in parts.items() if k != "total"), rel=1e-5)
    assert float(total.detach()) == pytest.approx(parts["total"])


def test_baseline_objective_uses_global_feature():
    cfg = tiny_config(use_gce=False, use_trl=False, oim="v")
    model = build_model(cfg)
    objective = GRLObjective(cfg, 4, model.dims)
    assert objective.video_field == "global_feature" and objective.pair_field == "global_feature"
    total, parts = objective(model(torch.randn(8, 4, 3, 32, 16)), torch.tensor([0, 1, 2, 3] * 2))
    assert set(parts) == {"video_oim", "verification", "total"}


def test_every_parameter_gets_a_gradient():
    cfg = tiny_config()
    model = build_model(cfg)
    objective = GRLObjective(cfg, 4, model.dims)
    clips, pids = torch.randn(8, 4, 3, 32, 16), torch.tensor([0, 1, 2, 3] * 2)
    objective(model(clips), pids)  # fills the OIM tables (a zero table gives no OIM gradient)
    model.zero_grad()
    total, _ = objective(model(clips), pids)
    total.backward()
    params = list(model.named_parameters()) + [("objective." + n, p) for n, p in objective.named_parameters()]
    missing = [n for n, p in params if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_loss_falls_on_a_tiny_synthetic_problem():
    cfg = tiny_config()
    model = build_model(cfg)
    objective = GRLObjective(cfg, 4, model.dims)
    pids = torch.tensor([0, 1, 2, 3] * 2)
    clips = torch.randn(8, 4, 3, 32, 16) + torch.randn(4, 1, 3, 1, 1).repeat(2, 1, 1, 1, 1)
    opt = torch.optim.Adam(list(model.parameters()) + list(objective.parameters()), lr=1e-3)
    start = time.perf_counter()
    history = []
    for _ in range(40):
        total, parts = objective(model(clips), pids)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(parts["total"])
    assert time.perf_counter() - start < 10
    assert sum(history[-5:]) / 5 < 0.5 * max(history[:5]), history
