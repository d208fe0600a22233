"""Training engine: repeatability, exact resume, done-marker, lr schedule, feature extraction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_data import colour_dataset

from grl.config import Config, ConfigError
from grl.data.datasets import Tracklet
from grl.engine import RunMismatchError, evaluate_model, extract_features, load_run, train
from grl.engine import trainer as trainer_mod
from grl.engine.build import build_optimizer, build_scheduler

H, W = 32, 16
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """6 train ids and 4 test ids, 2 cameras, one noisy colour per identity."""
    return colour_dataset(tmp_path_factory.mktemp("tiny"), 6, 4, protocol={"gallery": "tiny test set"})


def _config(**changes) -> Config:
    values = dict(
        backbone="tiny",
        pretrained=False,
        height=H,
        width=W,
        seq_len=4,
        batch_size=4,
        epochs=4,
        steps_per_epoch=2,
        lr=0.05,  # fast enough to learn in 8 steps; with the default verification weight of 20 it diverges, so 1
        lambda_veri=1.0,
        lr_step=2,
        lr_gamma=0.1,
        new_layer_lr_mult=2.0,
        eval_every=2,
        device="cpu",
        num_workers=0,
        amp=False,
        channels_last=False,
    )
    values.update(changes)
    return Config(**values)


def _losses(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [
        {k: v for k, v in r.items() if k.startswith("loss") or k in ("epoch", "lr", "lr_new", "eval")} for r in lines
    ]


def _events(run_dir) -> dict[str, list[tuple[int, float]]]:
    """The run's TensorBoard scalars, read back as TensorBoard reads them: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _final_state(run_dir):
    return torch.load(run_dir / "model.pt", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def reference_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    result = train(_config(), out, progress=False, dataset=tiny_dataset)
    return out, result


def test_run_writes_its_files_and_result_schema(reference_run):
    out, result = reference_run
    for name in ("checkpoint.pt", "metrics.jsonl", "model.pt", "result.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "result.json").read_text()) == json.loads(json.dumps(result))
    cfg = _config()
    assert result["key"] == cfg.key() and result["config"] == cfg.to_dict() and result["epochs_done"] == 4
    assert set(result["metrics"]) == set(cfg.test_features)
    for m in result["metrics"].values():
        assert {"mAP", "rank1", "rank5", "rank10", "rank20", "cmc"} <= set(m)
        assert 0 <= m["mAP"] <= 100
    assert result["protocol"] == {"gallery": "tiny test set"}
    for field in ("dataset", "wall_time_s", "device", "torch", "seed", "commit"):
        assert field in result
    records = _losses(out)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert "eval" in records[1] and "eval" not in records[0] and "eval" in records[3]  # eval_every=2
    assert records[3]["eval"]["h+l"]["mAP"] == pytest.approx(result["metrics"]["h+l"]["mAP"])
    assert all(np.isfinite(r["loss"]) for r in records)


def test_same_seed_same_numbers(reference_run, tiny_dataset, tmp_path):
    out, result = reference_run
    again = train(_config(), tmp_path, progress=False, dataset=tiny_dataset)
    assert _losses(tmp_path) == _losses(out)
    assert again["metrics"] == result["metrics"]
    other = train(_config(seed=1, epochs=1), tmp_path / "seed1", progress=False, dataset=tiny_dataset)
    assert _losses(tmp_path / "seed1")[0]["loss"] != _losses(out)[0]["loss"]
    assert other["seed"] == 1


def test_resume_after_interruption_equals_uninterrupted_run(reference_run, tiny_dataset, tmp_path, monkeypatch):
    out, result = reference_run
    real = trainer_mod.train_one_epoch

    def dies_in_epoch_3(config, state, loader, device, epoch, *args, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill")
        return real(config, state, loader, device, epoch, *args, **kwargs)

    monkeypatch.setattr(trainer_mod, "train_one_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(_config(), tmp_path, progress=False, dataset=tiny_dataset)
    assert not (tmp_path / "result.json").exists()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 2
    monkeypatch.setattr(trainer_mod, "train_one_epoch", real)

    resumed = train(_config(), tmp_path, progress=False, dataset=tiny_dataset)
    assert _losses(tmp_path) == _losses(out)
    assert resumed["metrics"] == result["metrics"]
    ref_state, new_state = _final_state(out), _final_state(tmp_path)
    assert ref_state.keys() == new_state.keys()
    for k in ref_state:
        assert torch.equal(ref_state[k], new_state[k]), k
    # the OIM lookup tables travel with the checkpoint too
    ref_obj = torch.load(out / "checkpoint.pt", weights_only=False)["objective"]
    new_obj = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["objective"]
    assert any("lut" in k.lower() or "table" in k.lower() for k in ref_obj) or ref_obj
    for k in ref_obj:
        assert torch.equal(ref_obj[k], new_obj[k]), k


@pytest.mark.parametrize(
    ("signal_name", "at_step", "message", "epochs_done", "partial_step"),
    [
        ("SIGTERM", 5, "SIGTERM at epoch 2, step 2 of 3;", 1, 2),  # in the middle of an epoch
        ("SIGUSR1", 3, "SIGUSR1 at the end of epoch 1;", 1, None),  # on an epoch's last step: its own checkpoint
    ],
)
def test_a_preemption_signal_checkpoints_that_step_and_the_rerun_equals_an_uninterrupted_run(
    tiny_dataset, tmp_path, monkeypatch, signal_name, at_step, message, epochs_done, partial_step
):
    import os
    import signal

    from grl.engine.trainer import TrainingPreempted

    config = _config(dtype="float64", epochs=3, steps_per_epoch=3, eval_every=0)
    reference = train(config, tmp_path / "uninterrupted", progress=False, dataset=tiny_dataset)

    steps = []

    def signal_at_step(name):  # the trainer calls this after every step
        if name == "train-step":
            steps.append(name)
            if len(steps) == at_step:
                os.kill(os.getpid(), getattr(signal, signal_name))

    handler_before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(trainer_mod, "fault_point", signal_at_step)
    run_dir = tmp_path / "preempted"
    with pytest.raises(TrainingPreempted, match=message) as caught:
        train(config, run_dir, progress=False, dataset=tiny_dataset)
    assert "run the same command again to resume from it" in str(caught.value)
    assert len(steps) == at_step  # it stopped at that step
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the handlers are put back
    assert not (run_dir / "result.json").exists()
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)  # plain data and tensors only
    assert checkpoint["epoch"] == epochs_done
    assert (checkpoint["partial"]["step"] if "partial" in checkpoint else None) == partial_step

    monkeypatch.undo()
    resumed = train(config, run_dir, progress=False, dataset=tiny_dataset)
    assert _losses(run_dir) == _losses(tmp_path / "uninterrupted")  # every loss term of every epoch, to the bit
    # TensorBoard: each step once, with the uninterrupted run's values (what the killed process logged past its
    # checkpoint is dropped)
    assert _events(run_dir)["loss/total"] == _events(tmp_path / "uninterrupted")["loss/total"]
    assert resumed["metrics"] == reference["metrics"]
    ref_state, new_state = _final_state(tmp_path / "uninterrupted"), _final_state(run_dir)
    assert all(torch.equal(ref_state[k], new_state[k]) for k in ref_state)


def test_training_writes_tensorboard_events_of_every_step_epoch_and_evaluation(reference_run):
    out, result = reference_run
    events = _events(out)
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = _config().steps_per_epoch
    assert [s for s, _ in events["loss/total"]] == list(range(1, len(epochs) * steps + 1))
    terms = {k[5:] for k in epochs[0] if k.startswith("loss_")}
    assert terms and all(f"loss/{t}" in events and f"epoch/{t}" in events for t in terms)
    for tag, key in (("epoch/total", "loss"), ("train/lr", "lr"), ("train/clips_per_s", "clips_per_s")):
        assert [s for s, _ in events[tag]] == [r["epoch"] * steps for r in epochs]
        assert np.allclose([v for _, v in events[tag]], [r[key] for r in epochs], rtol=1e-6)  # stored as float32
    evaluated = [r for r in epochs if "eval" in r]
    assert evaluated and [s for s, _ in events["eval/h+l/mAP"]] == [r["epoch"] * steps for r in evaluated]
    assert np.isclose(events["eval/h+l/mAP"][-1][1], result["metrics"]["h+l"]["mAP"], rtol=1e-6)


def test_finished_run_is_returned_without_training(reference_run, tiny_dataset, monkeypatch):
    out, result = reference_run
    before = (out / "result.json").stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(trainer_mod, "train_one_epoch", no_training)
    monkeypatch.setattr(trainer_mod, "build_training", no_training)
    assert train(_config(), out, progress=False, dataset=tiny_dataset) == json.loads((out / "result.json").read_text())
    assert (out / "result.json").stat().st_mtime_ns == before
    with pytest.raises(RunMismatchError, match="result"):
        train(_config(lr=0.01), out, progress=False, dataset=tiny_dataset)


def test_checkpoint_of_another_config_is_refused(tiny_dataset, tmp_path):
    train(_config(epochs=1), tmp_path, progress=False, dataset=tiny_dataset)
    (tmp_path / "result.json").unlink()  # leave only the checkpoint, as after a crash
    with pytest.raises(RunMismatchError, match=r"checkpoint.*key.*lr: 0\.05 -> 0\.01"):
        train(_config(epochs=1, lr=0.01), tmp_path, progress=False, dataset=tiny_dataset)


def test_lr_schedule_and_parameter_groups(reference_run):
    out, _ = reference_run
    records = _losses(out)
    assert [r["lr"] for r in records] == pytest.approx([0.05, 0.05, 0.005, 0.005])  # x0.1 every lr_step=2 epochs
    assert [r["lr_new"] for r in records] == pytest.approx([0.1, 0.1, 0.01, 0.01])  # new_layer_lr_mult=2

    cfg = _config(lr_step=3, lr_gamma=0.5)
    _, model = load_run(out)
    from grl.losses import GRLObjective

    objective = GRLObjective(cfg, 6, model.dims)
    opt = build_optimizer(cfg, model, objective)
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    assert {id(p) for p in opt.param_groups[0]["params"]} == backbone_ids
    new_ids = {id(p) for p in opt.param_groups[1]["params"]}
    assert {id(p) for p in objective.parameters()} <= new_ids  # the verification head is a new layer
    assert len(new_ids) + len(backbone_ids) == len(list(model.parameters())) + len(list(objective.parameters()))
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 5e-4
    sched = build_scheduler(cfg, opt)
    seen = []
    for _ in range(7):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.05] * 3 + [0.025] * 3 + [0.0125])


def test_progress_bar_goes_to_stderr_and_can_be_disabled(tiny_dataset, tmp_path, capsys):
    train(_config(epochs=1, eval_every=0), tmp_path / "quiet", progress=False, dataset=tiny_dataset)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    train(_config(epochs=1, eval_every=0), tmp_path / "loud", progress=True, dataset=tiny_dataset)
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.err and "clips_s" in captured.err and captured.out == ""


# ---- feature extraction -------------------------------------------------------------------------


class _MeanPixel(torch.nn.Module):
    """Stub model: every test feature is the clip's per-channel mean pixel."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, clips):
        feature = clips.mean(dim=(1, 3, 4))

        class _Out:
            def test_feature(self, name):
                return feature

        return _Out()


def _grey_tracklet(folder, values, pid=0, cam=0):
    folder.mkdir(parents=True)
    paths = []
    for f, v in enumerate(values):
        path = folder / f"{f:04d}.png"
        Image.fromarray(np.full((H, W, 3), v, np.uint8)).save(path)
        paths.append(str(path))
    return Tracklet(tuple(paths), pid, cam)


def _expected(frame_values):
    """Normalised mean pixel of frames with these grey values, L2-normalised."""
    x = (np.mean(frame_values) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return x / np.linalg.norm(x)


def test_dense_averages_chunks_and_rrs_takes_one_clip(tmp_path):
    values16 = [10 * f + 20 for f in range(16)]
    values12 = [15 * f + 5 for f in range(12)]
    tracklets = [_grey_tracklet(tmp_path / "a", values16), _grey_tracklet(tmp_path / "b", values12)]
    cfg = _config(seq_len=8, batch_size=2)
    model = _MeanPixel()
    rrs = extract_features(model, tracklets, cfg, sampling="rrs")
    dense = extract_features(model, tracklets, cfg, sampling="dense")
    assert set(rrs) == set(dense) == set(cfg.test_features)
    for feats in (rrs, dense):
        for f in feats.values():
            assert f.shape == (2, 3) and f.dtype == torch.float32
    # rrs: first frame of each of 8 equal chunks; dense: every frame in chunks of 8, chunk means averaged
    np.testing.assert_allclose(rrs["h"][0].numpy(), _expected(values16[::2]), atol=1e-5)
    np.testing.assert_allclose(
        rrs["h"][1].numpy(), _expected([values12[i] for i in (0, 2, 4, 6, 8, 9, 10, 11)]), atol=1e-5
    )
    np.testing.assert_allclose(dense["h"][0].numpy(), _expected(values16), atol=1e-5)
    chunk2 = values12[8:] + [values12[-1]] * 4  # the last chunk repeats the last frame
    chunk_means = [np.mean(values12[:8]), np.mean(chunk2)]
    np.testing.assert_allclose(dense["h"][1].numpy(), _expected(chunk_means), atol=1e-5)
    assert not np.allclose(dense["h"][0].numpy(), rrs["h"][0].numpy(), atol=1e-4)
    assert model.training  # mode restored


def test_extract_features_rejects_unknown_sampling(tmp_path):
    with pytest.raises(ValueError, match="sampling"):
        extract_features(_MeanPixel(), [_grey_tracklet(tmp_path / "a", [1, 2])], _config(), sampling="all")


def test_evaluate_model_and_load_run(reference_run, tiny_dataset):
    out, result = reference_run
    config, model = load_run(out)
    assert config == _config() and not model.training
    metrics = evaluate_model(model, tiny_dataset, config)
    assert set(metrics) == set(config.test_features)
    assert metrics == result["metrics"] or all(
        metrics[f]["mAP"] == pytest.approx(result["metrics"][f]["mAP"]) for f in metrics
    )
    feats = extract_features(model, tiny_dataset.gallery, config)
    assert feats["h+l"].shape[0] == len(tiny_dataset.gallery)
    assert torch.allclose(feats["h+l"].norm(dim=1), torch.ones(len(tiny_dataset.gallery)), atol=1e-5)


# ---- integration ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_mars(tmp_path_factory):
    """A 40+40-identity copy of the synthetic MARS-like set (the default has 150+150)."""
    from grl.data import load_dataset
    from grl.data.synthetic import generate

    root = generate(
        "mars",
        tmp_path_factory.mktemp("smallmars") / "mars",
        seed=0,
        num_train_ids=40,
        num_test_ids=40,
        num_distractors=10,
        num_junk=4,
        max_len=24,
        progress=False,
    )
    return load_dataset("mars", root)


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({"use_trl": False}, id="gce"),
        pytest.param({}, id="grl-full"),
    ],
)
def test_cpu_profile_learns_far_above_chance(small_mars, tmp_path, variant):
    # The CPU profile's model, input size and optimiser (grl.experiments.PROFILES["cpu"]), 120 steps.
    from grl.experiments import PROFILES

    cpu = dict(PROFILES["cpu"].overrides, epochs=6, steps_per_epoch=20, lr_step=4)
    cfg = Config(**cpu, **variant)
    result = train(cfg, tmp_path, progress=False, dataset=small_mars)
    gallery_ids = len({t.pid for t in small_mars.gallery if t.pid > 0})
    chance = 100.0 / gallery_ids
    best = max(m["mAP"] for m in result["metrics"].values())
    assert best > 4 * chance, (best, chance, result["metrics"])


def test_select_best_keeps_the_best_test_rank1_and_says_it_is_test_set_selection(tiny_dataset, tmp_path):
    config = _config(select_best=True, eval_every=1, epochs=4)
    result = train(config, tmp_path, progress=False, dataset=tiny_dataset)
    evals = [
        (r["epoch"], r["eval"]["h+l"]["rank1"], r["eval"]["h+l"]["mAP"])
        for r in (json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines())
    ]
    best_rank1 = max(r1 for _, r1, _ in evals)
    best_epoch = next(e for e, r1, _ in evals if r1 == best_rank1)  # ties keep the earlier epoch
    assert result["selection"]["epoch"] == best_epoch and "TEST set" in result["selection"]["rule"]
    assert result["metrics"]["h+l"]["mAP"] == pytest.approx(next(m for e, _, m in evals if e == best_epoch))
    _, model = load_run(tmp_path)  # model.pt holds the selected epoch's weights
    assert evaluate_model(model, tiny_dataset, config)["h+l"]["rank1"] == pytest.approx(best_rank1)
    assert train(_config(), tmp_path / "plain", progress=False, dataset=tiny_dataset)["selection"] is None


def test_rerank_adds_the_re_ranked_main_feature(reference_run, tiny_dataset):
    from grl.evaluation import evaluate_ranking, pairwise_distance
    from grl.reranking import re_ranking

    out, _ = reference_run
    config, model = load_run(out)
    metrics = evaluate_model(model, tiny_dataset, config.replace(rerank=True))
    assert set(metrics) == {"l", "h", "h+l", "h+l+rerank"}
    feats = extract_features(model, list(tiny_dataset.query) + list(tiny_dataset.gallery), config)["h+l"]
    q, g = feats[:4], feats[4:]
    ids = [torch.tensor([t.pid for t in s]) for s in (tiny_dataset.query, tiny_dataset.gallery)]
    cams = [torch.tensor([t.camid for t in s]) for s in (tiny_dataset.query, tiny_dataset.gallery)]
    expected = evaluate_ranking(
        re_ranking(pairwise_distance(q, g), pairwise_distance(q, q), pairwise_distance(g, g)),
        ids[0],
        ids[1],
        cams[0],
        cams[1],
    )
    assert metrics["h+l+rerank"]["mAP"] == pytest.approx(expected["mAP"])


def test_a_finished_run_gets_re_ranking_added_without_retraining(reference_run, tiny_dataset, tmp_path):
    import shutil

    from grl.engine.inference import complete_evaluation

    out, result = reference_run
    shutil.copytree(out, tmp_path / "run")
    config = _config()
    assert config.replace(rerank=True).key() == config.key()  # evaluation only: the same run
    before = (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns
    updated = complete_evaluation(config.replace(rerank=True), tmp_path / "run", dataset=tiny_dataset)
    assert set(updated["metrics"]) == set(result["metrics"]) | {"h+l+rerank"}
    assert {k: updated["metrics"][k] for k in result["metrics"]} == result["metrics"]
    assert (
        json.loads((tmp_path / "run" / "result.json").read_text())["metrics"]["h+l+rerank"]
        == updated["metrics"]["h+l+rerank"]
    )
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns == before  # nothing retrained
    _, model = load_run(out)
    expected = evaluate_model(model, tiny_dataset, config.replace(rerank=True))["h+l+rerank"]
    assert updated["metrics"]["h+l+rerank"]["mAP"] == pytest.approx(expected["mAP"])


def test_a_backbone_taken_from_another_run_and_frozen_is_not_trained(reference_run, tiny_dataset, tmp_path):
    """GRL's heads on another run's trained backbone (docs/convergence.md, the backbone question): the weights are
    copied in, and a frozen backbone leaves training with its weights and BatchNorm statistics unchanged."""
    source, _ = reference_run
    backbone = {k: v for k, v in _final_state(source).items() if k.startswith("backbone.")}
    frozen = tmp_path / "frozen"
    # lr 0.01: trained on from an already trained backbone, the toy's lr 0.05 can diverge on some kernels
    steady = {"lr": 0.01, "eval_every": 0}
    train(_config(backbone_from=str(source), freeze_backbone=True, **steady), frozen, dataset=tiny_dataset)
    after = _final_state(frozen)
    assert any("running_mean" in k for k in backbone)
    for k, v in backbone.items():
        assert torch.equal(after[k], v), k
    tuned = tmp_path / "tuned"
    train(_config(backbone_from=str(source), **steady), tuned, progress=False, dataset=tiny_dataset)
    changed = [k for k, v in backbone.items() if not torch.equal(_final_state(tuned)[k], v)]
    assert changed  # not frozen: the copied backbone is trained on
    with pytest.raises(ConfigError, match="freeze_backbone"):
        _config(use_gce=False, use_trl=False, oim="v", freeze_backbone=True)
