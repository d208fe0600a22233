"""Every command's expected errors, through the real command line: one line on stderr that names the file or the
field, a documented non-zero exit, and no traceback (``--debug`` brings it back)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_datasets import make_mars

from grl.__main__ import EXIT_BATCH, EXIT_INPUT

GRL = [sys.executable, "-m", "grl"]


def _grl(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([*GRL, *args], capture_output=True, text=True, timeout=timeout, env=full)


def _one_line(out: subprocess.CompletedProcess) -> str:
    """The error line: the only stderr line that is not a progress bar."""
    lines = [line for line in out.stderr.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert errors[0].endswith("(--debug shows the traceback)")
    return errors[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["train", "--experiment", "grl", "--profile", "quick", "--recipe", "bogus"], "unknown recipe 'bogus'"),
        (["train", "--experiment", "grl", "--profile", "nope"], "unknown profile 'nope'"),
        (["train", "--experiment", "no-such-row", "--profile", "quick"], "no-such-row"),
        (["list", "--profile", "quick", "--seeds", "x"], "--seeds"),
    ],
)
def test_a_bad_configuration_is_one_line_naming_the_field(args, names):
    out = _grl(*args)
    assert out.returncode == EXIT_INPUT and names in _one_line(out)


def test_a_bad_dataset_root_is_one_line_naming_the_folder_and_the_layout(tmp_path):
    out = _grl("train", "--experiment", "grl", "--profile", "quick", "--data-root", str(tmp_path / "not-mars"))
    line = _one_line(out)
    assert out.returncode == EXIT_INPUT and str(tmp_path / "not-mars") in line and "info/train_name.txt" in line


def test_missing_pretrained_weights_are_one_line_naming_the_file(tmp_path):
    root = make_mars(tmp_path / "mars")
    env = {"GRL_PRETRAINED_WEIGHTS": str(tmp_path / "resnet50.pth"), "GRL_DATA_DIR": str(tmp_path / "data")}
    out = _grl("train", "--experiment", "grl", "--profile", "paper", "--data-root", str(root), env=env)
    line = _one_line(out)
    assert out.returncode == EXIT_INPUT and str(tmp_path / "resnet50.pth") in line and "GRL_PRETRAINED_WEIGHTS" in line


@pytest.mark.slow
def test_a_corrupt_frame_is_one_line_naming_the_file(tmp_path):
    root = make_mars(tmp_path / "mars")
    for frame in root.rglob("*.jpg"):
        frame.write_bytes(b"not a JPEG")
    out = _grl(
        "train", "--experiment", "grl", "--profile", "quick", "--data-root", str(root),
        "--run-dir", str(tmp_path / "run"), env={"GRL_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    line = _one_line(out)
    assert out.returncode == EXIT_INPUT and line.startswith(f"error: cannot read frame {root}") and ".jpg" in line
    assert not (tmp_path / "run" / "result.json").exists()
    debug = _grl("train", "--debug", "--experiment", "grl", "--profile", "quick", "--data-root", str(root),
                 "--run-dir", str(tmp_path / "run"), env={"GRL_DATA_DIR": str(tmp_path / "data")})  # fmt: skip
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "CorruptFrameError" in debug.stderr


def test_a_locked_batch_is_one_line_naming_the_folder_and_the_holder(tmp_path):
    from grl.experiments import profile_dir

    folder = profile_dir("quick", tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from pathlib import Path; from grl.batch.locks import batch_lock\n"
         f"with batch_lock(Path({str(folder)!r})):\n    print('held', flush=True); input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        out = _grl("reproduce", "--profile", "quick", "--only", "grl-T4", "--seeds", "0", "--root", str(tmp_path))
        line = _one_line(out)
        assert out.returncode == EXIT_BATCH and str(folder) in line and f"PID {holder.pid}" in line
    finally:
        holder.communicate("\n", timeout=30)


def test_every_command_has_its_module_and_the_docstring_and_readme_name_exactly_the_parsers_commands():
    import argparse
    import re
    from pathlib import Path

    import grl.cli as cli

    subparsers = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = tuple(subparsers.choices)
    assert commands == cli.COMMANDS
    for name in commands:
        module = cli.command(name)
        assert module.__name__.startswith(f"grl.cli.{name.replace('-', '_')}") and module.HELP and callable(module.run)
    listed = re.search(r"python -m grl \{([^}]*)\}", " ".join(cli.__doc__.split())).group(1)
    assert tuple(n.strip() for n in listed.split(",")) == commands
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = re.search(r"Commands: `python -m grl \{([^}]*)\}`", " ".join(readme.split())).group(1)
    assert tuple(n.strip() for n in listed.split(",")) == commands, "the README's command list"
