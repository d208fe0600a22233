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
from grl.experiments import load_result, make_run, runs_for
from grl.reproduce import (
    BatchError,
    BatchInterrupted,
    ParameterError,
    batch_lock,
    preflight,
    refuse_undeclared_parameters,
    run_batch,
)
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
    from grl.engine import train
    from grl.reproduce import check_data

    run = make_run("grl-forward", "mars", "quick", root=tmp_path)
    check_data([run])
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")  # was: OSError Errno 22, no path
    result = train(run.config, run.run_dir, progress=False)
    assert result["epochs_done"] == run.config.epochs
    err = capsys.readouterr().err
    assert str(run.run_dir / "checkpoint.pt") in err and "unreadable checkpoint" in err
    assert len(list(run.run_dir.glob("checkpoint.pt.bad-*"))) == 1


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

    from grl import reproduce

    runs = runs_for("quick", only="grl-T4", seeds=(0,), root=tmp_path)

    def full(notebook, output, parameters, cwd=None, kernel=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(output))

    monkeypatch.setattr(reproduce, "execute", full)
    with pytest.raises(BatchError, match=r"experiment.ipynb: the disk is full .* rerun the same command"):
        run_batch(runs, progress=False)


# ---- notebooks that go missing ----------------------------------------------------------------
def test_a_finished_run_without_its_notebook_gets_it_again_without_retraining(tmp_path, monkeypatch):
    from grl import reproduce

    run = runs_for("quick", only="grl-T4", seeds=(0,), root=tmp_path)[0]
    run.run_dir.mkdir(parents=True)
    run.result_path.write_text(json.dumps({"key": run.config.key(), "metrics": {}}))
    (run.run_dir / ".experiment.running.ipynb").write_bytes(b"")  # what a kill before the rename left
    executed = []

    def fake_execute(notebook, output, parameters, cwd=None, kernel=None):
        executed.append(parameters["output_dir"])
        nbformat.write(nbformat.v4.new_notebook(), output)
        return output

    monkeypatch.setattr(reproduce, "execute", fake_execute)
    outcome = run_batch([run], progress=False)
    assert executed == [str(run.run_dir)] and outcome.skipped == [run.name] and not outcome.done
    assert not (run.run_dir / ".experiment.running.ipynb").exists()
    assert run_batch([run], progress=False).skipped == [run.name] and len(executed) == 1  # now complete
    (run.run_dir / "experiment.ipynb").write_text("{ truncated")
    run_batch([run], progress=False)
    assert len(executed) == 2 and list(run.run_dir.glob("experiment.ipynb.bad-*"))


# ---- Ctrl-C ------------------------------------------------------------------------------------
def test_ctrl_c_stops_with_one_line_naming_the_run(tmp_path, monkeypatch, capsys):
    from grl import reproduce

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "execute", interrupted)
    monkeypatch.setattr(reproduce, "check_data", lambda runs: None)
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
    from grl.reproduce import notebooks_dir

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
        "from grl.reproduce import execute; "
        f"execute({str(tmp_path / 'n.ipynb')!r}, {str(tmp_path / 'o.ipynb')!r}, {{'x': 2}})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "without encryption" not in out.stderr and "KeyboardInterrupt" not in out.stderr


# ---- the report: both files or neither ---------------------------------------------------------
def test_a_failed_report_build_rewrites_neither_report(tmp_path, monkeypatch, capsys):
    from grl import reproduce

    (tmp_path / "report.html").write_text("previous html")
    (tmp_path / "report.md").write_text("previous md")
    monkeypatch.setattr(reproduce, "_step", lambda what, *a: False)  # every notebook step fails
    runs = runs_for("quick", only="grl-T4", seeds=(0,), root=tmp_path)
    reproduce._figure4_and_report("quick", tmp_path, reproduce.notebooks_dir(), runs, (0,), None, {}, {})
    assert (tmp_path / "report.html").read_text() == "previous html"  # was: md rewritten, html stale
    assert (tmp_path / "report.md").read_text() == "previous md"
    assert "report NOT rebuilt: report.html and report.md are the previous batch's" in capsys.readouterr().err
