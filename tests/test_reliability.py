"""What a user or a machine does to a batch: bad artefacts, locks, full disks, Ctrl-C, stray parameters.

Each test first reproduces the problem as it was met (see the issue on a batch that survives
anything), then checks the fix. The end-to-end kills are in tests/test_faults.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grl.__main__ import main
from grl.batch.core import BatchError, BatchInterrupted, ParameterError
from grl.batch.local import run_batch
from grl.batch.locks import batch_lock, preflight
from grl.batch.notebook import refuse_undeclared_parameters
from grl.experiments import load_result, make_run, runs_for
from grl.utils import set_aside
from grl.viz import read_run_metrics


# ---- artefacts that verify themselves ----------------------------------------------------------
def test_a_garbage_result_is_set_aside_and_the_run_counts_as_not_done(tmp_path, capsys):
    run = make_run("grl", "mars", "quick", root=tmp_path)
    run.run_dir.mkdir(parents=True)
    run.result_path.write_text("\x00\x00 not json")
    assert not run.is_done()  # was: JSONDecodeError on every rerun, no file named
    err = capsys.readouterr().err
    assert str(run.result_path) in err and "set aside" in err
    assert not run.result_path.exists() and len(list(run.run_dir.glob("result.json.bad-*"))) == 1
    run.result_path.write_text(json.dumps([1, 2]))  # JSON, but not a result
    assert load_result(run.run_dir) is None and len(list(run.run_dir.glob("result.json.bad-*"))) == 2


def test_a_half_written_metrics_line_is_skipped_with_a_warning(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": 2.0}\n{"epoch": 2, "lo')
    frame = read_run_metrics(tmp_path)  # was: "Expecting ',' delimiter" in every report build
    assert list(frame.epoch) == [1]
    assert f"{tmp_path / 'metrics.jsonl'} line 2 is not a JSON record" in capsys.readouterr().err
    from grl import viz

    assert len(viz.read_metrics([tmp_path / "metrics.jsonl"])) == 1


def test_a_truncated_checkpoint_is_set_aside_and_the_run_starts_again(tmp_path, capsys):
    from grl.batch.shared import check_data
    from grl.engine import train

    run = make_run("grl-forward", "mars", "quick", root=tmp_path)
    check_data([run])
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")  # was: OSError Errno 22, no path
    result = train(run.config, run.run_dir, progress=False)
    assert result["epochs_done"] == run.config.epochs
    err = capsys.readouterr().err
    assert str(run.run_dir / "checkpoint.pt") in err and "unreadable checkpoint" in err
    assert len(list(run.run_dir.glob("checkpoint.pt.bad-*"))) == 1


class _RunsCode:
    """Unpickling this touches ``target``: a stand-in for a checkpoint that would run arbitrary code."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path, capsys):
    import torch

    from grl.engine.features import load_run
    from grl.engine.state import load_checkpoint

    run = make_run("grl-forward", "mars", "quick", root=tmp_path)
    marker = tmp_path / "code-ran"
    keys = ("key", "epoch", "model", "objective", "optimizer", "scheduler", "scaler", "rng", "history")
    payload = {k: 0 for k in keys} | {"key": run.config.key(), "model": _RunsCode(marker)}
    # the payload is real: the unsafe loader runs it
    torch.save(payload, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()

    run.run_dir.mkdir(parents=True)
    torch.save(payload, run.run_dir / "checkpoint.pt")
    assert load_checkpoint(run.run_dir / "checkpoint.pt", run.config.key(), run.config) is None
    assert not marker.exists()
    err = capsys.readouterr().err
    assert "holding objects other than tensors and plain data, not loaded" in err
    assert str(run.run_dir / "checkpoint.pt") in err and len(list(run.run_dir.glob("checkpoint.pt.bad-*"))) == 1

    torch.save({"state_dict": _RunsCode(marker), "config": run.config.to_dict(), "key": "k"}, run.run_dir / "model.pt")
    with pytest.raises(ValueError, match=r"model\.pt holds objects other than tensors and plain data, so it is not"):
        load_run(run.run_dir)
    assert not marker.exists()


def test_set_aside_never_overwrites(tmp_path):
    for _ in range(3):
        (tmp_path / "x.json").write_text("{")
        set_aside(tmp_path / "x.json", "broken")
    assert len(list(tmp_path.glob("x.json.bad-*"))) == 3


# ---- one batch per folder ----------------------------------------------------------------------
def _hold_lock(folder: str, ready) -> None:
    with batch_lock(Path(folder)):
        ready.set()
        time.sleep(60)


def test_one_batch_per_folder_and_a_dead_holder_frees_the_lock(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready))
    holder.start()
    assert ready.wait(60)
    with pytest.raises(BatchError, match=rf"another batch \(PID {holder.pid}, started .*\) is running on {tmp_path}"):
        with batch_lock(tmp_path):
            pass
    holder.kill()  # SIGKILL: the lock file stays, the lock does not
    holder.join()
    assert (tmp_path / ".batch.lock").exists()
    with batch_lock(tmp_path):  # taken over safely
        assert json.loads((tmp_path / ".batch.lock.json").read_text())["pid"] == os.getpid()


# ---- before work starts ------------------------------------------------------------------------
def test_preflight_refuses_read_only_folders_and_too_little_space(tmp_path, monkeypatch):
    runs = runs_for("quick", only="table4", seeds=(0,), root=tmp_path / "out")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # root ignores mode bits: simulate the refusal the kernel would give
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(BatchError, match=rf"{read_only} is not writable .*Make it writable, or choose another folder"):
        preflight(read_only, runs)
    monkeypatch.undo()
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 1000))
    with pytest.raises(BatchError, match=r"5 runs to train need about .* GiB .* only 0.00 GiB are free"):
        preflight(tmp_path / "out", runs)


def test_a_full_disk_during_the_batch_stops_it_with_the_path(tmp_path, monkeypatch):
    import errno

    from grl.batch import local

    runs = runs_for("quick", only="grl-T4", seeds=(0,), root=tmp_path)

    def full(notebook, output, parameters, cwd=None, kernel=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(output))

    monkeypatch.setattr(local, "execute", full)
    with pytest.raises(BatchError, match=r"experiment.ipynb: the disk is full .* rerun the same command"):
        run_batch(runs, progress=False)


# ---- notebooks that go missing ----------------------------------------------------------------
def test_a_finished_run_without_its_notebook_gets_it_again_without_retraining(tmp_path, monkeypatch):
    from grl.batch import local

    run = runs_for("quick", only="grl-T4", seeds=(0,), root=tmp_path)[0]
    run.run_dir.mkdir(parents=True)
    run.result_path.write_text(json.dumps({"key": run.config.key(), "metrics": {}}))
    (run.run_dir / ".experiment.running.ipynb").write_bytes(b"")  # what a kill before the rename left
    executed = []

    def fake_execute(notebook, output, parameters, cwd=None, kernel=None):
        executed.append(parameters["output_dir"])
        nbformat.write(nbformat.v4.new_notebook(), output)
        return output

    monkeypatch.setattr(local, "execute", fake_execute)
    outcome = run_batch([run], progress=False)
    assert executed == [str(run.run_dir)] and outcome.skipped == [run.name] and not outcome.done
    assert not (run.run_dir / ".experiment.running.ipynb").exists()
    assert run_batch([run], progress=False).skipped == [run.name] and len(executed) == 1  # now complete
    (run.run_dir / "experiment.ipynb").write_text("{ truncated")
    run_batch([run], progress=False)
    assert len(executed) == 2 and list(run.run_dir.glob("experiment.ipynb.bad-*"))


# ---- Ctrl-C ------------------------------------------------------------------------------------
def test_ctrl_c_stops_with_one_line_naming_the_run(tmp_path, monkeypatch, capsys):
    from grl.batch import local, study

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(local, "execute", interrupted)
    monkeypatch.setattr(study, "check_data", lambda runs: None)
    assert main(["reproduce", "--profile", "quick", "--only", "grl-T4", "--seeds", "0", "--root", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # above it only the progress bar
    assert "Traceback" not in err and "interrupted during run grl-T4-mars-split0-seed0-" in last
    assert "rerun the same command to resume it from its last checkpoint" in last
    assert BatchInterrupted(step="data generation").message().startswith("interrupted during data generation")


# ---- parameters plain papermill lets through --------------------------------------------------
def test_undeclared_or_mistyped_parameters_are_refused_inside_the_notebook():
    declared = 'experiment: str = "grl"\nseed: int = 0\nlr: float = 0.1\n'
    refuse_undeclared_parameters(["", declared, "print(1)"], "x.ipynb")  # JupyterLab / nbval: nothing injected
    refuse_undeclared_parameters(["", declared, "# Parameters\nseed = 3\nlr = 1\n"], "x.ipynb")
    with pytest.raises(
        ParameterError,
        match=r"x.ipynb: unknown parameter\(s\) \['epochs'\]; declared parameters: "
        r"experiment, seed, lr",
    ):
        refuse_undeclared_parameters(["", declared, "# Parameters\nepochs = 3\n"], "x.ipynb")
    with pytest.raises(ParameterError, match=r"parameter 'seed' must be int \(default 0\), got '3' \(str\)"):
        refuse_undeclared_parameters(["", declared, '# Parameters\nseed = "3"\n'], "x.ipynb")


@pytest.mark.slow
def test_plain_papermill_with_an_undeclared_parameter_fails(tmp_path):
    from grl.batch.core import notebooks_dir

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(notebooks_dir() / "experiment.ipynb"),
            str(tmp_path / "out.ipynb"),
            "-p",
            "epochs",
            "3",
            "--kernel",
            "python3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=notebooks_dir(),
    )
    assert out.returncode != 0  # was: exit 0 after a warning, with the parameter ignored
    assert "unknown parameter(s) ['epochs']" in out.stderr


# ---- generated data ----------------------------------------------------------------------------
def test_generation_removes_a_dead_generations_leftovers_and_makes_readable_folders(tmp_path):
    from grl.data.synthetic import generate

    root = tmp_path / "prid2011"
    dead = tmp_path / ".prid2011.partial-999999999-abc"  # no such PID
    live = tmp_path / f".prid2011.partial-{os.getpid()}-xyz"  # a generation in progress: kept
    dead.mkdir()
    live.mkdir()
    generate("prid2011", root, num_cam_a=4, num_cam_b=4, num_both=3, max_len=22, height=32, width=16)
    assert not dead.exists() and live.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert root.stat().st_mode & 0o777 == 0o777 & ~umask  # was 0700: unreadable to others


# ---- noise -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kernels_do_not_log_noise(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell("x")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, tmp_path / "n.ipynb")
    code = (
        "from grl.batch.notebook import execute; "
        f"execute({str(tmp_path / 'n.ipynb')!r}, {str(tmp_path / 'o.ipynb')!r}, {{'x': 2}})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "without encryption" not in out.stderr and "KeyboardInterrupt" not in out.stderr


# ---- the report: both files or neither ---------------------------------------------------------
def test_a_failed_report_build_rewrites_neither_report(tmp_path, monkeypatch, capsys):
    from grl.batch import study

    (tmp_path / "report.html").write_text("previous html")
    (tmp_path / "report.md").write_text("previous md")
    monkeypatch.setattr(study, "_step", lambda what, *a: False)  # every notebook step fails
    runs = runs_for("quick", only="grl-T4", seeds=(0,), root=tmp_path)
    study._figure4_and_report("quick", tmp_path, study.notebooks_dir(), runs, (0,), None, {}, {})
    assert (tmp_path / "report.html").read_text() == "previous html"  # was: md rewritten, html stale
    assert (tmp_path / "report.md").read_text() == "previous md"
    assert "report NOT rebuilt: report.html and report.md are the previous batch's" in capsys.readouterr().err


# ---- divergence ---------------------------------------------------------------------------------
def test_the_divergence_check_names_non_finite_and_exploding_terms():
    from grl.engine.guards import divergence_check

    reference = {"total": 12.0, "verification": 0.7, "frame_oim": 5.0}
    assert divergence_check({"total": 13.0, "verification": 0.9, "frame_oim": 6.0}, reference, 1000) == []
    bad = divergence_check({"total": 2e4, "verification": 999.0, "frame_oim": float("nan")}, reference, 1000)
    assert bad[0].startswith("total=2e+04 (first epoch: 12") and bad[1] == "frame_oim=nan"
    assert divergence_check({"verification": 999.0}, reference, 1000) == []  # 1000 x max(0.7, 1): the floor
    assert divergence_check({"verification": 1001.0}, reference, 1000) == [
        "verification=1001 (first epoch: 0.7, limit x1000)"
    ]
    assert divergence_check({"total": float("inf")}, reference, 0) == ["total=inf"]  # factor 0: non-finite only
    assert divergence_check({"total": 1e30}, reference, 0) == []


def test_a_diverging_run_stops_within_a_step_naming_it_and_writes_no_result(tmp_path):
    from grl.batch.shared import check_data
    from grl.engine import train
    from grl.engine.trainer import TrainingDiverged

    run = make_run("grl", "mars", "quick", root=tmp_path)
    check_data([run])
    config = run.config.replace(lr=1e6)
    with pytest.raises(TrainingDiverged) as caught:
        train(config, run.run_dir, progress=False)
    message = str(caught.value)
    assert message.startswith(f"run {run.run_dir.name} ({run.run_dir}): training diverged at epoch 1, step ")
    assert "limit x1000" in message or "=nan" in message or "=inf" in message
    assert "no result written" in message and "lower config.lr (1000000.0)" in message
    assert not (run.run_dir / "result.json").exists() and not (run.run_dir / "model.pt").exists()
    assert run.config.replace(divergence_factor=10).key() == run.config.key()  # a guard, not a training setting
