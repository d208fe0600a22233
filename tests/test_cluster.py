"""``--executor slurm`` (grl.batch.cluster) through submitit's LOCAL executor: no SLURM cluster here.

The jobs execute a fake experiment notebook (as tests/test_reproduce.py): it "trains" by writing
result.json at once, fails for grl-T6 unless GRL_FAKE_FAIL=0, and — when GRL_FAKE_SLEEP names its
experiment and the run folder holds no checkpoint yet — writes a checkpoint and sleeps until its job is
killed; run again, it finds the checkpoint and finishes, marking its result as resumed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest

from grl.__main__ import main
from grl.config import ConfigError
from grl.experiments import load_result, runs_for

submitit = pytest.importorskip("submitit")

from fake_notebooks import write_fake_notebook  # noqa: E402

from grl.batch import cluster  # noqa: E402
from grl.batch.cluster import SlurmOptions, check_executor, parse_slurm_options, run_jobs, slurm_options  # noqa: E402

FAKE_BODY = """
import json, os, time
from pathlib import Path
from grl.experiments import make_run
run = make_run(experiment, dataset, profile, split=split, seed=seed, data_root=data_root, run_dir=output_dir,
               recipe=recipe or None)
if experiment == "grl-T6" and os.environ.get("GRL_FAKE_FAIL", "1") == "1":
    raise RuntimeError("deliberate failure of " + experiment)
out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
resumed = (out / "checkpoint.txt").exists()
if experiment == os.environ.get("GRL_FAKE_SLEEP") and not resumed:
    (out / "checkpoint.txt").write_text("epoch 1")  # what a killed training leaves behind
    parent = os.getppid()
    for _ in range(600):  # until the job is killed (a kernel orphaned by it stops too)
        if os.getppid() != parent:
            break
        time.sleep(0.1)
    raise RuntimeError("the sleeping fake run was not killed")
(out / "result.json").write_text(json.dumps({"key": run.config.key(), "metrics": {}, "resumed": resumed,
                                             "job": os.environ.get("SUBMITIT_LOCAL_JOB_ID", "")}))
"""
LOCAL = SlurmOptions(time_min=5, gpus_per_run=1, cluster="local")


@pytest.fixture
def fake_notebook(tmp_path):
    return write_fake_notebook(tmp_path / "notebooks" / "fake_experiment.ipynb", FAKE_BODY)


class Recording:
    """submitit's local executor, remembering each submitted job by its run's name."""

    def __init__(self, folder):
        self.executor = cluster.make_executor(folder, LOCAL)
        self.folder = self.executor.folder
        self.jobs: dict = {}

    def update_parameters(self, **kwargs):
        self.executor.update_parameters(**kwargs)

    def submit(self, fn, name, *args):
        job = self.executor.submit(fn, name, *args)
        self.jobs[name] = job
        return job


def three_runs(tmp_path):
    table4 = runs_for("quick", only="table4", root=tmp_path / "reports")
    runs = [table4[0], table4[3], table4[4]]  # grl, grl-T6 (fails), grl-T10
    assert [r.experiment for r in runs] == ["grl", "grl-T6", "grl-T10"]
    return runs


@pytest.mark.slow
def test_jobs_fill_the_run_folders_isolate_a_failure_and_resubmit_only_the_missing(
    fake_notebook, tmp_path, monkeypatch
):
    runs = three_runs(tmp_path)
    status = tmp_path / "reports" / "status.json"
    logs = tmp_path / "reports" / "slurm"

    first_ex = Recording(logs)
    first = run_jobs(
        runs, fake_notebook, status_path=status, options=LOCAL, executor=first_ex, progress=False, poll_s=0.2
    )
    assert sorted(first_ex.jobs) == sorted(r.name for r in runs)  # one job per run
    assert sorted(first.done) == sorted([runs[0].name, runs[2].name]) and not first.skipped
    for run in (runs[0], runs[2]):  # the folders the local batch uses: runs/<name>/
        assert run.run_dir == tmp_path / "reports" / "runs" / run.name
        assert run.is_done() and (run.run_dir / "experiment.ipynb").is_file()
        assert load_result(run.run_dir)["job"] == first_ex.jobs[run.name].job_id  # written by the job
        assert not list(run.run_dir.glob(".*running*"))
    failed_nb = runs[1].run_dir / "experiment.ipynb"
    assert first.failed == {runs[1].name: str(failed_nb)}  # the failure is recorded, the others finished
    assert "deliberate failure" in failed_nb.read_text()
    recorded = json.loads(status.read_text())["runs"]
    assert recorded[runs[1].name]["status"] == "failed" and recorded[runs[1].name]["notebook"] == str(failed_nb)
    assert recorded[runs[1].name]["error"] == "RuntimeError: deliberate failure of grl-T6"
    assert recorded[runs[0].name]["status"] == "done" and recorded[runs[0].name]["job"]
    assert list(logs.glob("*_log.err"))  # submitit's logs inside the profile folder

    monkeypatch.setenv("GRL_FAKE_FAIL", "0")  # the failing run is fixed: only it is resubmitted
    stamp = runs[0].result_path.stat().st_mtime_ns
    second_ex = Recording(logs)
    second = run_jobs(
        runs, fake_notebook, status_path=status, options=LOCAL, executor=second_ex, progress=False, poll_s=0.2
    )
    assert list(second_ex.jobs) == [runs[1].name]
    assert second.done == [runs[1].name] and not second.failed
    assert sorted(second.skipped) == sorted([runs[0].name, runs[2].name])
    assert runs[0].result_path.stat().st_mtime_ns == stamp
    assert all(r.is_done() for r in runs)

    third_ex = Recording(logs)  # everything done: nothing is submitted
    third = run_jobs(runs, fake_notebook, status_path=status, options=LOCAL, executor=third_ex, progress=False)
    assert third_ex.jobs == {} and len(third.skipped) == 3 and not third.done and not third.failed
    assert {v["status"] for v in json.loads(status.read_text())["runs"].values()} == {"done"}


@pytest.mark.slow
def test_a_killed_job_is_resubmitted_by_the_next_batch_and_resumes(fake_notebook, tmp_path, monkeypatch):
    runs = three_runs(tmp_path)
    runs = [runs[0], runs[2]]  # grl sleeps until killed, grl-T10 finishes
    monkeypatch.setenv("GRL_FAKE_SLEEP", "grl")
    status = tmp_path / "reports" / "status.json"
    executor = Recording(tmp_path / "reports" / "slurm")
    marker = runs[0].run_dir / "checkpoint.txt"

    def kill_when_sleeping():
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.1)
        executor.jobs[runs[0].name].cancel()  # as scancel does: the job ends without a result

    killer = threading.Thread(target=kill_when_sleeping, daemon=True)
    killer.start()
    first = run_jobs(
        runs, fake_notebook, status_path=status, options=LOCAL, executor=executor, progress=False, poll_s=0.2
    )
    killer.join()
    assert first.done == [runs[1].name] and list(first.failed) == [runs[0].name]
    entry = json.loads(status.read_text())["runs"][runs[0].name]
    assert entry["status"] == "failed" and "ended without a result" in entry["error"]
    assert "rerun the same command" in entry["error"] and entry["notebook"] == entry["log"]
    assert not runs[0].is_done() and marker.exists()

    again = Recording(tmp_path / "reports" / "slurm")
    second = run_jobs(
        runs, fake_notebook, status_path=status, options=LOCAL, executor=again, progress=False, poll_s=0.2
    )
    assert list(again.jobs) == [runs[0].name]  # only the killed run is resubmitted
    assert second.done == [runs[0].name] and second.skipped == [runs[1].name] and not second.failed
    assert load_result(runs[0].run_dir)["resumed"] is True  # it found what the killed job left
    assert not list(runs[0].run_dir.glob(".*running*"))


@pytest.mark.slow
def test_a_job_out_of_time_is_requeued_by_submitit_and_resumes(fake_notebook, tmp_path, monkeypatch):
    """SLURM signals a job before its time limit (and on preemption); submitit then requeues the checkpointable
    RunJob, whose notebook resumes. The local executor sends the same signal at timeout - signal_delay_s."""
    run = three_runs(tmp_path)[0]
    monkeypatch.setenv("GRL_FAKE_SLEEP", "grl")
    executor = submitit.LocalExecutor(tmp_path / "reports" / "slurm")
    executor.update_parameters(timeout_min=0.5, signal_delay_s=15)  # the signal 15 s after the start
    outcome = run_jobs([run], fake_notebook, options=LOCAL, executor=executor, progress=False, poll_s=0.2)
    assert outcome.done == [run.name] and not outcome.failed  # one job, requeued within itself
    assert load_result(run.run_dir)["resumed"] is True and (run.run_dir / "checkpoint.txt").exists()
    log = "".join(p.read_text() for p in (tmp_path / "reports" / "slurm").glob("*_log.err"))
    assert "this job is timed-out" in log
    assert not list(run.run_dir.glob(".*running*"))


def test_reproduce_dispatches_to_the_cluster_and_builds_the_report_here(tmp_path, monkeypatch):
    from grl.batch import study
    from grl.batch.core import BatchResult

    calls = {}

    def fake_run_jobs(runs, notebook, status_path=None, options=None, folder=None, **_):
        calls.update(runs=[r.name for r in runs], notebook=notebook, status=status_path, options=options, folder=folder)
        return BatchResult(done=[r.name for r in runs])

    monkeypatch.setattr(cluster, "run_jobs", fake_run_jobs)
    monkeypatch.setattr(study, "run_batch", lambda *a, **k: pytest.fail("the local batch ran"))
    monkeypatch.setattr(study, "prepare_shared", lambda *a, **k: None)
    monkeypatch.setattr(study, "check_data", lambda *a, **k: None)
    monkeypatch.setattr(study, "_figure4_and_report", lambda *a, **k: calls.setdefault("report", True))
    out = tmp_path / "study"
    assert study.reproduce("quick", only="table4", seeds=(0,), root=out, executor="slurm", slurm=LOCAL) == 0
    assert len(calls["runs"]) == 5 and calls["options"] is LOCAL and calls["report"]
    assert calls["folder"] == out / "slurm" and calls["status"] == out / "status.json"
    assert calls["notebook"].name == "experiment.ipynb"


def test_bad_input_gets_one_clear_message(tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match=r"--executor 'pbs': unknown executor; valid executors: local, slurm"):
        slurm_options("pbs")
    with pytest.raises(
        ConfigError,
        match=r"--slurm-partition, --slurm-option apply only to SLURM jobs: add "
        r"--executor slurm",
    ):
        slurm_options("local", partition="gpu", option_items=["mem=4G"])
    with pytest.raises(ConfigError, match="apply only to SLURM jobs"):
        check_executor("local", LOCAL)
    assert slurm_options("local") is None and check_executor("local", None) is None
    for bad in ("account", "=abc", "account=", "acc ount=x"):
        with pytest.raises(ConfigError, match="--slurm-option"):
            parse_slurm_options([bad])
    assert parse_slurm_options(["account=abc", "--mem=64G", "cpus_per_task=8"]) == {
        "account": "abc",
        "mem": "64G",
        "cpus_per_task": "8",
    }
    with pytest.raises(ConfigError, match="use --slurm-time instead"):
        parse_slurm_options(["time=60"])
    with pytest.raises(ConfigError, match="submitit sets this sbatch option itself"):
        parse_slurm_options(["output=x.log"])
    for kwargs, name in (
        ({"time_min": 0}, "--slurm-time"),
        ({"time_min": -5}, "--slurm-time"),
        ({"gpus_per_run": 0}, "--slurm-gpus-per-run"),
    ):
        with pytest.raises(ConfigError, match=f"{name} must be a whole number >= 1"):
            slurm_options("slurm", **kwargs)
    options = slurm_options("slurm", "gpu", 90, 2, ["account=abc"])
    assert options == SlurmOptions("gpu", 90, 2, {"account": "abc"})

    which = cluster.shutil.which  # no sbatch from here on, even on a SLURM login node
    monkeypatch.setattr(
        cluster.shutil, "which", lambda name, *a, **k: None if name == "sbatch" else which(name, *a, **k)
    )
    with pytest.raises(
        ConfigError,
        match=r"--executor slurm: sbatch( and srun are| is) not on PATH.*SLURM must be "
        r"reachable.*local executor",
    ):
        check_executor("slurm", None)
    assert check_executor("slurm", LOCAL) is LOCAL  # the tests' local executor needs no sbatch
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "submitit", None)  # as if not installed
        with pytest.raises(ConfigError, match="--executor slurm needs the submitit package: pip install submitit"):
            check_executor("slurm", LOCAL)

    # Through the command line (still no sbatch): exit 2 and one line, before any run is looked at.
    monkeypatch.setenv("GRL_REPORTS_DIR", str(tmp_path))
    cases = [
        (["--executor", "slurm"], "not on PATH, so no SLURM cluster is reachable"),
        (["--executor", "kubernetes"], "unknown executor"),
        (["--slurm-time", "60"], "--slurm-time applies only to SLURM jobs"),
        (["--executor", "slurm", "--slurm-option", "mem"], "--slurm-option expects KEY=VALUE"),
        (["--executor", "slurm", "--slurm-time", "0"], "--slurm-time must be a whole number >= 1"),
        (["--executor", "slurm", "--slurm-gpus-per-run", "-1"], "--slurm-gpus-per-run must be"),
    ]
    for extra, message in cases:
        assert main(["reproduce", "--profile", "quick", "--only", "table4", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (extra, err)


def test_the_sbatch_script_carries_the_options(tmp_path, monkeypatch):
    """What SLURM would get, rendered by submitit with stand-ins for sbatch and srun (never called)."""
    for tool in ("sbatch", "srun"):
        (tmp_path / tool).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    options = check_executor(
        "slurm", slurm_options("slurm", "gpu", 90, 1, ["account=abc", "mem=64G", "cpus_per_task=8"])
    )
    executor = cluster.make_executor(tmp_path / "slurm", options)
    executor.update_parameters(name="grl-mars-split0-seed0-abc")
    script = executor._executor._make_submission_file_text("python -u -m submitit.core._submit x", "uid")
    for line in (
        "--partition=gpu",
        "--time=90",
        "--gpus-per-node=1",
        "--nodes=1",
        "--ntasks-per-node=1",
        "--account=abc",
        "--mem=64G",
        "--cpus-per-task=8",
        "--job-name=grl-mars-split0-seed0-abc",
        "--signal=USR2@90",
        f"--output={tmp_path / 'slurm'}/%j_0_log.out",
    ):
        assert f"#SBATCH {line}\n" in script, line


@pytest.mark.slow
def test_procs_per_run_reaches_each_jobs_kernel_and_needs_as_many_gpus(tmp_path, capsys):
    body = (
        "import os\nfrom pathlib import Path\nPath(output_dir).mkdir(parents=True, exist_ok=True)\n"
        "(Path(output_dir) / 'procs.txt').write_text(os.environ.get('GRL_PROCS_PER_RUN', 'unset'))"
    )
    notebook = write_fake_notebook(tmp_path / "notebooks" / "procs.ipynb", body)
    runs = runs_for("quick", only="grl-T4", dataset="mars", seeds=(0,), root=tmp_path)
    run_jobs(runs, notebook, options=LOCAL, folder=tmp_path / "slurm", progress=False, procs_per_run=2)
    assert (runs[0].run_dir / "procs.txt").read_text() == "2"  # the kernel would launch torchrun with 2
    with pytest.raises(
        ConfigError, match=r"--procs-per-run 2 .* --slurm-gpus-per-run is 1: pass --slurm-gpus-per-run 2"
    ):
        check_executor("slurm", LOCAL, procs_per_run=2)
    two = SlurmOptions(time_min=5, gpus_per_run=2, cluster="local")
    assert check_executor("slurm", two, procs_per_run=2) is two
    capsys.readouterr()
    check_executor("slurm", two, procs_per_run=1)
    assert "other GPUs of each job stay idle; pass --procs-per-run 2" in capsys.readouterr().err


CHILD = """
import os, signal, sys, time
from pathlib import Path
checkpoint = Path(sys.argv[1])
def save(signum, frame):  # as the trainer does on SIGTERM: write the step's checkpoint atomically, then go on
    tmp = checkpoint.with_suffix(".tmp")
    tmp.write_text("step 7")
    os.replace(tmp, checkpoint)
if sys.argv[2] == "trains":
    signal.signal(signal.SIGTERM, save)
Path(sys.argv[1] + ".ready").touch()
time.sleep(120)
"""


DRIVER = """
import json, subprocess, sys, time
from pathlib import Path
from grl.batch import cluster
checkpoint, child = Path(sys.argv[1]), sys.argv[2]
proc = subprocess.Popen([sys.executable, "-c", sys.argv[3], str(checkpoint), child])
while not Path(str(checkpoint) + ".ready").exists():
    time.sleep(0.05)
started = time.time()
again = cluster.RunJob().checkpoint("run", "nb.ipynb", str(checkpoint.parent / "experiment.ipynb"), {}, ".")
took = time.time() - started
alive = proc.poll() is None
proc.kill()
print(json.dumps({"seconds": took, "args": list(again.args[:3]), "type": type(again).__name__,
                  "alive": alive, "returncode": proc.wait(), "checkpoint": checkpoint.read_text()}))
"""


@pytest.mark.parametrize("child", ["trains", "idle"])
def test_a_requeued_job_first_lets_its_kernel_save_the_current_step(tmp_path, child):
    """submitit calls RunJob.checkpoint on preemption / time-out: the job's children (the notebook's kernel) get
    SIGTERM and the requeue waits until the run's checkpoint is rewritten (or they have ended), not a minute.
    (In a process of its own: the job's process signals all of its children.)"""
    import subprocess

    checkpoint = tmp_path / "run" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_text("epoch 1")
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(checkpoint), child, CHILD], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout)
    assert seen["seconds"] < 10 and seen["type"] == "DelayedSubmission"
    assert seen["args"] == ["run", "nb.ipynb", str(checkpoint.parent / "experiment.ipynb")]
    if child == "trains":
        assert seen["checkpoint"] == "step 7" and seen["alive"]  # saved its step, then went on until killed
    else:
        assert seen["checkpoint"] == "epoch 1" and not seen["alive"] and seen["returncode"] == -15  # SIGTERM's default
