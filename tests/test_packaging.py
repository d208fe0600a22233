"""environment.yml (conda) and pyproject.toml (pip) must name the same packages and pins."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = {_name(r): r.replace(" ", "") for r in project["dependencies"]}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_deps = {_name(r): r.replace(" ", "") for r in pip_section if not r.startswith("-e")}

    assert set(conda_deps) == set(pip_deps), (
        f"only in environment.yml: {sorted(set(conda_deps) - set(pip_deps))}; "
        f"only in pyproject.toml: {sorted(set(pip_deps) - set(conda_deps))}"
    )
    assert conda_deps == pip_deps, "same packages but different version pins"


def test_required_stack_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for needed in ("torch", "torchvision", "jupyterlab", "papermill", "matplotlib", "seaborn", "pandas", "nbval"):
        assert needed in names


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme
    assert re.search(r"^exec make test$", ci, re.M)
