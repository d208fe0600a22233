"""The run-time breakdown benchmark (grl.bench.run): structure only, never timings."""

import math

from grl.bench.__main__ import SECTIONS
from grl.bench.run import PARTS, breakdown, format_breakdown


def test_breakdown_parts_are_positive_and_sum_to_the_total():
    result = breakdown("quick", "grl", "mars", reps=1, jobs=2)
    assert list(result["parts"]) == list(PARTS)
    assert all(p["seconds"] > 0 and p["how"] for p in result["parts"].values())
    assert math.isclose(result["total_s"], sum(p["seconds"] for p in result["parts"].values()))
    assert result["runs"] > 0 and result["jobs"] == 2 and result["threads"] == 1  # the quick profile pins 1 thread
    assert math.isclose(result["study_s"], result["runs"] * result["total_s"] / 2)
    table = format_breakdown(result)
    assert all(f"| {name} |" in table for name in PARTS) and "| total |" in table


def test_run_is_a_bench_section():
    assert "run" in SECTIONS


# ---- grl.bench.gpu: values on made-up numbers, and one tiny CPU run ----------------------------------

import pytest  # noqa: E402
import torch  # noqa: E402

from grl.bench import gpu, projection  # noqa: E402


def test_gpu_is_a_bench_section():
    assert "gpu" in SECTIONS


def test_dense_bf16_peaks_by_device_name():
    assert projection.dense_bf16_peak("NVIDIA H100 80GB HBM3") == ("H100 SXM", 989.0)
    assert projection.dense_bf16_peak("NVIDIA H100 PCIe") == ("H100 PCIe", 756.0)
    assert projection.dense_bf16_peak("NVIDIA H200")[1] == 989.0
    assert projection.dense_bf16_peak("NVIDIA A100-SXM4-80GB")[1] == 312.0
    assert projection.dense_bf16_peak("NVIDIA L40S")[1] == 362.0
    assert projection.dense_bf16_peak("NVIDIA GeForce RTX 4090")[1] == 165.0
    assert projection.dense_bf16_peak("Tesla T4") is None


def test_loader_verdict_on_made_up_numbers():
    slow = projection.loader_verdict(loader_clips_s=100.0, step_s=0.05, batch_size=16, workers=4)  # the step eats 320/s
    assert slow["needed_clips_s"] == pytest.approx(320.0) and slow["ratio"] == pytest.approx(100 / 320)
    assert slow["bottleneck"] and "IS the bottleneck" in slow["text"]
    assert slow["workers_needed"] == 13  # 25 clips/s per worker -> ceil(320 / 25)
    fast = projection.loader_verdict(loader_clips_s=400.0, step_s=0.05, batch_size=16)
    assert not fast["bottleneck"] and fast["ratio"] == pytest.approx(1.25) and "not the bottleneck" in fast["text"]


def test_steps_per_epoch_as_the_sampler_counts_them():
    assert projection.steps_per_epoch("mars", 16) == 8298 // 8 == 1037
    assert (
        projection.steps_per_epoch("ilidsvid", 16) == 300 // 8
        and projection.steps_per_epoch("prid2011", 16) == 178 // 8
    )
    assert projection.steps_per_epoch("mars", 16, steps=25) == 25  # config.steps_per_epoch wins


def test_projection_arithmetic_on_made_up_runs():
    runs = [
        projection.PlannedRun("a", "mars", 2, 10, 8),
        projection.PlannedRun("b", "mars", 1, 10, 4),
        projection.PlannedRun("c", "ilidsvid", 1, 5, 8),
    ]
    p = projection.project(runs, step_s=0.5, seq_len=8, batch_size=16, gpus=2)
    # a: 20 steps x 0.5 = 10 s; b: 10 steps at T=4 -> 0.25 s = 2.5 s; c: 5 x 0.5 = 2.5 s
    assert p["runs"] == 3 and p["steps"] == 35
    assert p["total_s"] == pytest.approx(15.0) and p["total_n_s"] == pytest.approx(7.5)
    assert p["makespan_s"] == pytest.approx(10.0)  # a on one GPU; b then c on the other
    assert p["mars_steps"] == 1037 and p["mars_epoch_s"] == pytest.approx(518.5)
    assert p["mars_epoch_n_s"] == pytest.approx(259.25)
    with pytest.raises(ValueError, match="gpus"):
        projection.project(runs, 0.5, 8, 16, gpus=0)


def test_paper_profile_plan_comes_from_the_catalogue():
    from grl.experiments import runs_for

    plan = projection.plan_profile("paper")
    assert len(plan) == len(runs_for("paper"))
    assert {r.dataset for r in plan} == {"mars", "ilidsvid", "prid2011"}
    assert all(r.epochs == 50 for r in plan)
    assert sum(r.dataset == "ilidsvid" for r in plan) == sum(r.dataset == "prid2011" for r in plan) == 30


def test_step_flops_count_forward_and_backward():
    layer = torch.nn.Linear(32, 16, bias=False)
    x = torch.randn(4, 32, requires_grad=True)
    flops = gpu.count_step_flops(lambda: layer(x).sum())
    assert flops["forward"] == 2 * 4 * 32 * 16
    assert flops["total"] == 3 * flops["forward"]  # backward: grad of the input and of the weight
    x.requires_grad_(False)
    assert gpu.count_step_flops(lambda: layer(x).sum())["total"] == 2 * flops["forward"]  # no input grad


@pytest.fixture(scope="module")
def tiny_gpu_bench():
    return gpu.main(
        ["--tiny", "--warmup", "0", "--steps", "1", "--gpus", "2", "--workers", "0", "--loader-batches", "2"]
    )


def test_gpu_bench_tiny_on_cpu(tiny_gpu_bench, capsys):
    r = tiny_gpu_bench
    c = r["config"]
    assert r["tiny"] and c.backbone == "tiny" and (c.height, c.width) == (32, 16)
    from grl.experiments import get_profile

    paper = get_profile("paper").overrides
    assert c.batch_size == paper["batch_size"] and c.seq_len == 8  # the profile's batch, not hard-coded
    assert [(v["amp"], v["channels_last"]) for v in r["variants"]] == [
        (False, False),
        (False, True),
        (True, False),
        (True, True),
    ]
    for v in r["variants"]:
        assert v["clips_s"] == pytest.approx(c.batch_size / v["step_s"])
        assert v["tflops"] == pytest.approx(v["flops"]["total"] / v["step_s"] / 1e12)
        # backward = grads of the inputs and of the weights, except the first layer's input: between 1x and 2x
        assert v["flops"]["forward"] < v["flops"]["backward"] <= 2 * v["flops"]["forward"] * 1.05
    assert len({v["flops"]["total"] for v in r["variants"]}) == 1  # layout and precision keep the arithmetic
    if not r["cuda"]:
        assert r["trainer"] is r["variants"][0]  # the trainer uses neither amp nor channels_last on CPU
        assert all(v["peak_bytes"] is None and v["peak_share"] is None for v in r["variants"])
    assert r["verdict"]["needed_clips_s"] == pytest.approx(c.batch_size / r["trainer"]["step_s"])
    assert r["effective_step_s"] == pytest.approx(max(r["trainer"]["step_s"], c.batch_size / r["loader"]["clips_s"]))
    p = r["projection"]
    assert p["gpus"] == 2 and p["mars_epoch_s"] == pytest.approx(1037 * r["effective_step_s"])
    assert p["total_n_s"] == pytest.approx(p["total_s"] / 2) and p["total_s"] / 2 <= p["makespan_s"] <= p["total_s"]
    out = gpu.format_result(r)
    if not r["cuda"]:
        assert out.count(gpu.NO_CUDA) >= 9  # share + memory of 4 variants, pinned memory
    assert "one MARS epoch" in out and f"{p['runs']} trainings" in out and "verdict" in out


def test_model_bench_row_is_consistent():
    from grl.bench.model import bench_config, cpu_config, matmul_throughput

    config = cpu_config().replace(height=32, width=16, batch_size=4, seq_len=2)
    r = bench_config(config, warmup=1, reps=2, infer_reps=1)
    assert r["gflop_step"] > 0 and 0 < r["side_by_side_share"] < 10
    assert r["faults_per_step"] >= 0 and 0 <= r["system_share"] <= 1
    assert r["layout"] == "contiguous, fp32"
    unmapped = bench_config(config, warmup=1, reps=1, infer_reps=1, keep_memory=False)
    assert unmapped["layout"] == "contiguous, fp32, freed memory unmapped"
    assert unmapped["gflop_step"] == r["gflop_step"]  # same model, same FLOPs
    assert matmul_throughput(torch.device("cpu"), 0.0, n=64) > 0  # at least one matmul, even for no time
