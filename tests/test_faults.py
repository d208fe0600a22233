"""Fault injection: the batch killed at chosen moments, then rerun, ends exactly like an uninterrupted one.

``GRL_FAULT_PAUSE=<point>[:n]`` makes the batch (or its kernel) stop at a named point and wait
(grl.utils.fault_point), so every kill lands at the same place on any machine; the test then
SIGKILLs the batch with its kernel, reruns the same command and compares every result and every
logged epoch with a reference batch (the quick profile trains in float64 on one thread: equal to
the last bit). Two invocations on one folder: the second refuses, the first finishes alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

COMMAND = [
    sys.executable,
    "-m",
    "grl",
    "reproduce",
    "--profile",
    "quick",
    "--only",
    "grl-forward,grl-backward",
    "--dataset",
    "mars",
    "--seeds",
    "0",
]


def _env(data: Path, pause: str = "") -> dict:
    env = {**os.environ, "GRL_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    env.pop("GRL_FAULT_PAUSE", None)
    if pause:
        env["GRL_FAULT_PAUSE"] = pause
    return env


def _batch(root: Path, data: Path, pause: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, "--root", str(root)], env=_env(data, pause), capture_output=True, text=True, timeout=timeout
    )


def _kill_at(root: Path, data: Path, point: str, timeout: float = 300) -> None:
    """Start the batch, wait until it reports standing at ``point``, SIGKILL it and its kernel."""
    log = root.parent / f"{root.name}-{point.replace(':', '_')}.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*COMMAND, "--root", str(root)],
            env=_env(data, point),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        while f"FAULT-POINT {point.split(':')[0]}" not in log.read_text():
            assert proc.poll() is None, f"the batch ended before reaching {point}:\n{log.read_text()[-3000:]}"
            assert time.time() < deadline, f"{point} not reached in {timeout} s"
            time.sleep(0.2)
        tree = psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
        for p in tree:  # SIGKILL: no handler, no cleanup -- as a machine that dies
            p.kill()
        proc.wait()
        psutil.wait_procs(tree, timeout=10)


def _outcome(root: Path) -> dict:
    """Every run's result metrics and logged epochs (without timings), and what else lies in its folder."""
    runs = {}
    for run in sorted((root / "runs").iterdir()):
        result = json.loads((run / "result.json").read_text())
        epochs = [
            {k: v for k, v in json.loads(line).items() if not k.endswith("_s") and k != "clips_per_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]
        runs[run.name] = {
            "metrics": result["metrics"],
            "epochs": epochs,
            "files": sorted(p.name for p in run.iterdir()),
        }
    return runs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    done = _batch(base / "reference", base / "data")
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = _outcome(base / "reference")
    assert len(outcome) == 2
    for run in outcome.values():
        assert run["files"] == [
            "checkpoint.pt",
            "experiment.ipynb",
            "metrics.jsonl",
            "model.pt",
            "result.json",
            "tensorboard",
        ]
        assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert (base / "reference" / "report.html").is_file() and (base / "reference" / "report.md").is_file()
    return base, outcome


@pytest.mark.parametrize(
    "point",
    ["synthetic-writing", "after-checkpoint:1", "after-checkpoint:2", "before-notebook-rename:1", "before-report"],
)
def test_killed_anywhere_then_rerun_equals_the_uninterrupted_batch(reference, point):
    base, expected = reference
    name = point.replace(":", "-")
    root, data = base / name, base / (f"data-{name}" if point == "synthetic-writing" else "data")
    _kill_at(root, data, point)
    if point == "synthetic-writing":
        assert list(data.glob("synthetic-small/.mars.partial-*"))  # what the kill left behind
    rerun = _batch(root, data)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _outcome(root) == expected  # every number, every epoch, every run with its executed notebook
    assert not list(data.glob("synthetic-small/.*partial*"))  # the dead generation's leftovers are gone
    assert "Traceback" not in rerun.stderr
    md, html = (root / "report.md").read_text(), (root / "report.html").read_text()
    assert "**Runs**: 2 of 2 done" in md and "Runs</strong>: 2 of 2 done" in html  # the same batch in both


def test_two_batches_on_one_folder(reference):
    base, expected = reference
    root = base / "concurrent"
    first = subprocess.Popen(
        [*COMMAND, "--root", str(root)],
        env=_env(base / "data"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (root / ".batch.lock.json").exists():
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.1)
    second = _batch(root, base / "data")
    assert second.returncode == 1
    assert f"another batch (PID {first.pid}" in second.stderr and str(root) in second.stderr
    assert second.stderr.strip().count("\n") == 0  # one line
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert _outcome(root) == expected  # no epoch logged twice, nothing done twice


def test_ctrl_c_stops_the_batch_within_seconds_in_one_line(reference):
    base, expected = reference
    root, log = base / "ctrl-c", base / "ctrl-c.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*COMMAND, "--root", str(root)],
            env=_env(base / "data", "after-checkpoint:1"),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        deadline = time.time() + 300
        while "FAULT-POINT after-checkpoint" not in log.read_text():  # mid-run: the kernel is training
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.2)
        os.killpg(proc.pid, 2)  # what Ctrl-C in a terminal does: SIGINT to the whole foreground group
        started = time.time()
        proc.wait(timeout=60)
    text = log.read_text()
    assert proc.returncode == 130 and time.time() - started < 30
    assert "Traceback" not in text and "ZMQError" not in text
    assert text.strip().splitlines()[-1].startswith("interrupted during run grl-forward-mars-split0-seed0-")
    rerun = _batch(root, base / "data")
    assert rerun.returncode == 0 and _outcome(root) == expected


def test_sigterm_during_training_saves_that_step_exits_75_and_the_rerun_equals_the_uninterrupted_run(reference):
    """What SLURM does to a preempted or timed-out job (SIGTERM), to ``python -m grl train`` in the middle of an
    epoch: one line naming the run and the step, exit 75, a checkpoint of that step; the same command again
    resumes from it and ends with the uninterrupted run's numbers (float64: to the last bit)."""
    base, expected = reference
    name = next(n for n in expected if n.startswith("grl-forward-mars-"))
    run_dir, log = base / "sigterm" / "runs" / name, base / "sigterm.log"
    train = [sys.executable, "-m", "grl", "train", "--profile", "quick", "--experiment", "grl-forward"]
    train += ["--dataset", "mars", "--seed", "0", "--run-dir", str(run_dir)]
    with open(log, "w") as err:
        proc = subprocess.Popen(
            train, env=_env(base / "data", "train-step:6"), stdout=subprocess.DEVNULL, stderr=err
        )  # the quick profile has 4 steps an epoch: step 6 is the middle of epoch 2
        deadline = time.time() + 300
        while "FAULT-POINT train-step" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        proc.terminate()  # SIGTERM
        proc.wait(timeout=60)
    lines = [line for line in log.read_text().splitlines() if line.strip() and "FAULT-POINT" not in line]
    assert proc.returncode == 75, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    assert lines[-1].startswith(f"error: run {name}: SIGTERM at epoch 2, step 2 of 4; a checkpoint of this step")
    assert not (run_dir / "result.json").exists()
    again = subprocess.run(train, env=_env(base / "data"), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = _outcome(base / "sigterm")[name]
    assert resumed["metrics"] == expected[name]["metrics"] and resumed["epochs"] == expected[name]["epochs"]
