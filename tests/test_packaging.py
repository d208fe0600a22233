"""environment.yml (conda) and pyproject.toml (pip) must name the same packages and pins."""

import re
from pathlib import Path

import tomllib
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


def test_readme_is_a_short_page_whose_links_resolve():
    """README.md is the user's five-minute page (about 12 KB); the rest lives in docs/ (the MkDocs site).
    Every relative link and image of the README points at a file of the repository."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12_500, f"README.md is {len(readme.encode())} bytes: move detail to docs/"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links to its docs pages"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    for page in ("study.md", "real-data.md", "fidelity.md", "portability.md", "reliability.md", "benchmarks.md"):
        assert f"docs/{page}" in readme, f"README.md does not link docs/{page}"


def test_lint_and_docs_build_are_part_of_make_test():
    makefile = (ROOT / "Makefile").read_text()
    test_target = re.search(r"^test:(.*)$", makefile, re.M).group(1)
    assert "lint" in test_target.split() and "docs" in test_target.split()
    assert "ruff check" in makefile and "ruff format --check" in makefile and "mkdocs build --strict" in makefile
