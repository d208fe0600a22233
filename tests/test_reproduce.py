"""The batch orchestrator end to end on a fake notebook, parameter validation and the CLI."""

from __future__ import annotations

import json

import nbformat
import pytest
from fake_notebooks import write_fake_notebook

from grl.__main__ import main
from grl.batch.core import ParameterError, experiment_parameters
from grl.batch.local import run_batch
from grl.batch.notebook import execute, validate_parameters
from grl.batch.shared import check_data
from grl.batch.study import parse_data_roots
from grl.config import ConfigError
from grl.experiments import make_run, runs_for

# Same parameters as notebooks/experiment.ipynb; "trains" by writing result.json, fails for
# grl-T6 unless GRL_FAKE_FAIL=0 (the kernel inherits the test's environment).
FAKE_BODY = """
import json, os
from pathlib import Path
from grl.experiments import make_run
run = make_run(experiment, dataset, profile, split=split, seed=seed, data_root=data_root, run_dir=output_dir,
               recipe=recipe or None)
if experiment == "grl-T6" and os.environ.get("GRL_FAKE_FAIL", "1") == "1":
    raise RuntimeError("deliberate failure of " + experiment)
Path(output_dir).mkdir(parents=True, exist_ok=True)
(Path(output_dir) / "threads.txt").write_text(os.environ.get("OMP_NUM_THREADS", ""))
(Path(output_dir) / "result.json").write_text(json.dumps({"key": run.config.key(), "metrics": {}}))
print("trained", experiment)
"""


@pytest.fixture
def fake_notebook(tmp_path):
    return write_fake_notebook(tmp_path / "fake_experiment.ipynb", FAKE_BODY)


def test_parameters_are_validated_by_name_and_type(fake_notebook, tmp_path):
    validate_parameters(fake_notebook, {"experiment": "grl-T4", "seed": 3, "split": 1})
    with pytest.raises(ParameterError, match=r"unknown parameter 'epochs'; declared parameters: experiment, profile"):
        validate_parameters(fake_notebook, {"epochs": 3})
    with pytest.raises(ParameterError, match=r"parameter 'seed' must be int .* got '1' \(str\)"):
        validate_parameters(fake_notebook, {"seed": "1"})
    with pytest.raises(ParameterError, match=r"parameter 'split' must be int"):
        validate_parameters(fake_notebook, {"split": True})
    out = tmp_path / "out.ipynb"
    with pytest.raises(ParameterError, match="'seed'"):  # refused before any kernel starts
        execute(fake_notebook, out, {"seed": 1.5})
    assert not out.exists()


def test_committed_notebooks_declare_the_orchestrators_parameters():
    from grl.batch.core import notebooks_dir

    run = make_run("grl-T4", "ilidsvid", "cpu", split=2)
    validate_parameters(notebooks_dir() / "experiment.ipynb", experiment_parameters(run))
    validate_parameters(
        notebooks_dir() / "report.ipynb", {"profile": "cpu", "reports_dir": "/x", "seeds": "0,1", "reference": ""}
    )


@pytest.mark.slow
def test_batch_skips_resumes_and_records_failures(fake_notebook, tmp_path, monkeypatch):
    table4 = runs_for("quick", only="table4", root=tmp_path / "reports")
    runs = [table4[0], table4[3], table4[4]]  # grl, grl-T6 (fails), grl-T10
    assert [r.experiment for r in runs] == ["grl", "grl-T6", "grl-T10"]
    status = tmp_path / "reports" / "status.json"

    first = run_batch(runs, fake_notebook, status_path=status, progress=False)
    assert first.done == [runs[0].name, runs[2].name]  # the run after the failure still ran
    failed_nb = runs[1].run_dir / "experiment.ipynb"
    assert first.failed == {runs[1].name: str(failed_nb)}
    assert failed_nb.exists() and "deliberate failure" in failed_nb.read_text()
    recorded = json.loads(status.read_text())["runs"]
    assert recorded[runs[1].name]["status"] == "failed" and recorded[runs[1].name]["notebook"] == str(failed_nb)
    assert "deliberate failure" in recorded[runs[1].name]["error"]
    for run in (runs[0], runs[2]):
        assert run.is_done() and (run.run_dir / "experiment.ipynb").exists()
        assert not list(run.run_dir.glob(".*running*"))  # the temp notebook was renamed into place

    # An interrupted batch: a half-written notebook left in a run folder, no result.json.
    stamp = runs[0].result_path.stat().st_mtime_ns
    (runs[1].run_dir / ".experiment.running.ipynb").write_text("{half")
    monkeypatch.setenv("GRL_FAKE_FAIL", "0")
    second = run_batch(runs, fake_notebook, status_path=status, progress=False)
    assert second.skipped == [runs[0].name, runs[2].name]  # finished runs are not redone
    assert second.done == [runs[1].name] and not second.failed
    assert runs[0].result_path.stat().st_mtime_ns == stamp
    assert json.loads(status.read_text())["runs"][runs[1].name]["status"] == "done"


def test_data_roots_are_checked_up_front(tmp_path):
    assert parse_data_roots([f"mars={tmp_path}"]) == {"mars": str(tmp_path.resolve())}
    with pytest.raises(ConfigError, match="NAME=PATH"):
        parse_data_roots(["mars"])
    with pytest.raises(ConfigError, match="valid datasets: mars, ilidsvid, prid2011"):
        parse_data_roots(["duke=/x"])
    with pytest.raises(ConfigError, match="--data-root mars=/path/to/mars"):
        check_data([make_run("grl", "mars", "paper", root=tmp_path)])
    from grl.data import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError):
        check_data([make_run("grl", "prid2011", "paper", data_root=str(tmp_path), root=tmp_path)])


def test_cli_help_list_and_bad_input(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GRL_REPORTS_DIR", str(tmp_path))
    assert main([]) == 0
    assert "reproduce" in capsys.readouterr().out
    assert main(["list", "--profile", "quick", "--only", "table4"]) == 0
    out = capsys.readouterr().out
    assert "GRL (T=10)" in out and "10 unique runs" in out and "missing" in out and "seed1" in out
    assert main(["list", "--profile", "quick", "--only", "table4", "--seeds", "3"]) == 0
    assert "5 unique runs" in capsys.readouterr().out
    assert main(["reproduce", "--profile", "quick", "--seeds", "1,1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seeds must list each seed once" in err
    assert main(["list", "--profile", "laptop"]) == 2
    assert "valid profiles: quick, cpu, paper" in capsys.readouterr().err
    assert main(["train", "--experiment", "grl-T7", "--profile", "quick"]) == 2
    assert "valid experiments:" in capsys.readouterr().err
    assert main(["reproduce", "--profile", "quick", "--only", "table9"]) == 2
    assert "valid names: table1" in capsys.readouterr().err


@pytest.mark.slow
def test_parallel_batch_divides_the_cores_and_isolates_failures(fake_notebook, tmp_path, monkeypatch):
    from grl.batch.local import cpu_cores

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    table4 = runs_for("quick", only="table4", root=tmp_path / "reports")
    runs = [table4[0], table4[3], table4[4]]  # grl, grl-T6 (fails), grl-T10
    outcome = run_batch(runs, fake_notebook, status_path=tmp_path / "status.json", progress=False, jobs=2)
    assert sorted(outcome.done) == sorted([runs[0].name, runs[2].name])
    assert list(outcome.failed) == [runs[1].name]
    jobs = min(2, cpu_cores())
    expected = str(max(1, cpu_cores() // jobs)) if jobs > 1 else ""
    for run in (runs[0], runs[2]):
        assert (run.run_dir / "threads.txt").read_text() == expected  # never more threads in total than cores
    assert "OMP_NUM_THREADS" not in __import__("os").environ  # the batch's own environment is restored
    again = run_batch(runs[::2], fake_notebook, progress=False, jobs=2)
    assert sorted(again.skipped) == sorted([runs[0].name, runs[2].name]) and not again.done


def test_jobs_are_checked(capsys):
    from grl.batch.local import check_jobs, cpu_cores

    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="--jobs must be a whole number >= 1"):
            check_jobs(bad)
    assert check_jobs(1) == 1
    assert check_jobs(cpu_cores() + 3) == cpu_cores()
    assert f"more than the {cpu_cores()} cores" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_sharing_a_kernel_equal_runs_in_fresh_kernels(tmp_path):
    """A batch executes its runs one after another in one kernel (Kernel): a run must not see the names or the
    random state the previous run left there, so its every number equals a run in a kernel of its own."""
    from grl.batch.core import notebooks_dir

    def outcome(runs):
        return {
            r.name: (
                json.loads(r.result_path.read_text())["metrics"],
                [
                    {k: v for k, v in json.loads(line).items() if not k.endswith("_s") and k != "clips_per_s"}
                    for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()
                ],
            )
            for r in runs
        }

    shared = runs_for("quick", only="baseline,grl-T4", dataset="mars", seeds=(0,), root=tmp_path / "shared")
    assert run_batch(shared, progress=False).done == [r.name for r in shared]  # grl-T4 after the baseline
    fresh = runs_for("quick", only="grl-T4,baseline", dataset="mars", seeds=(0,), root=tmp_path / "fresh")
    for run in reversed(fresh):  # the other order, each in a new kernel
        execute(notebooks_dir() / "experiment.ipynb", run.run_dir / "experiment.ipynb", experiment_parameters(run))
    assert outcome(shared) == outcome(fresh)
    second = nbformat.read(shared[1].run_dir / "experiment.ipynb", as_version=4)
    assert not [o for c in second.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    counts = [c.execution_count for c in second.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))  # its own cells counted from 1: a new session in the kernel


def test_each_job_kernel_sees_one_gpu_of_its_own(tmp_path, monkeypatch):
    import dataclasses

    from grl.batch import local
    from grl.batch.local import gpu_per_job

    notebook = write_fake_notebook(
        tmp_path / "gpu.ipynb",
        (
            "import os\nfrom pathlib import Path\nPath(output_dir).mkdir(parents=True, exist_ok=True)\n"
            "(Path(output_dir) / 'gpu.txt').write_text(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))"
        ),
    )
    cpu_runs = runs_for("quick", only="grl-T4,baseline", dataset="mars", seeds=(0,), root=tmp_path)
    gpu_runs = [dataclasses.replace(r, config=dataclasses.replace(r.config, device="auto")) for r in cpu_runs]
    monkeypatch.setattr(local, "visible_gpus", lambda: ["3", "5"])
    run_batch(gpu_runs, notebook, progress=False, jobs=2)  # no result.json: "failed", only the pinning is read
    assert sorted((r.run_dir / "gpu.txt").read_text() for r in gpu_runs) == ["3", "5"]
    with pytest.raises(ConfigError, match=r"--jobs 3 needs 3 GPUs but 2 are visible \(3,5\).*--jobs 2 or fewer"):
        gpu_per_job(gpu_runs, 3)
    assert gpu_per_job(gpu_runs, 1, procs_per_run=2) == ["3,5"]  # a run on 2 processes: 2 GPUs for its kernel
    with pytest.raises(ConfigError, match=r"--jobs 2 × --procs-per-run 2 needs 4 GPUs but 2 are visible.*--jobs 1 "):
        gpu_per_job(gpu_runs, 2, procs_per_run=2)
    assert gpu_per_job(cpu_runs, 2) is None  # CPU runs: no pinning, the cores are divided instead
    monkeypatch.setattr(local, "visible_gpus", lambda: [])
    assert gpu_per_job(gpu_runs, 2) is None  # device "auto" without CUDA trains on the CPU


@pytest.mark.slow
def test_a_batch_run_on_two_processes_trains_under_torchrun(tmp_path, monkeypatch):
    """--procs-per-run 2: the notebook's kernel launches torchrun, two gloo processes train the run together
    (grl.engine.distributed) and rank 0 writes its result; the batch sees it done."""
    run = runs_for("quick", only="grl-T4", dataset="mars", seeds=(0,), root=tmp_path)[0]
    outcome = run_batch([run], progress=False, procs_per_run=2)
    assert outcome.done == [run.name] and not outcome.failed
    result = json.loads(run.result_path.read_text())
    assert result["world_size"] == 2 and result["key"] == run.config.key()
    executed = nbformat.read(run.run_dir / "experiment.ipynb", as_version=4)
    assert "on 2 processes" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    with pytest.raises(ConfigError, match="procs-per-run must be a whole number"):
        run_batch([run], progress=False, procs_per_run=0)
    with pytest.raises(ConfigError, match="batch_size"):  # 8 clips cannot give 3 processes whole pairs
        run_batch([run], progress=False, procs_per_run=3)


def test_a_run_that_kills_its_kernel_fails_alone_and_the_next_run_gets_a_new_kernel(tmp_path):
    body = (
        "import json, os\nfrom pathlib import Path\nfrom grl.experiments import make_run\n"
        "if experiment == 'grl-T4':\n    os._exit(1)  # as the out-of-memory killer would\n"
        "run = make_run(experiment, dataset, profile, split=split, seed=seed, data_root=data_root, "
        "run_dir=output_dir, recipe=recipe or None)\nPath(output_dir).mkdir(parents=True, exist_ok=True)\n"
        "(Path(output_dir) / 'result.json').write_text(json.dumps({'key': run.config.key(), 'metrics': {}}))"
    )
    notebook = write_fake_notebook(tmp_path / "dies.ipynb", body)
    runs = runs_for("quick", only="grl-T4,baseline", dataset="mars", seeds=(0,), root=tmp_path)
    runs = sorted(runs, key=lambda r: r.experiment != "grl-T4")  # the dying run first, in the batch's one kernel
    outcome = run_batch(runs, notebook, progress=False)
    assert list(outcome.failed) == [runs[0].name] and outcome.done == [runs[1].name]
