"""environment.yml (conda) and pyproject.toml (pip) must name the same packages and pins."""

import ast
import re
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> tuple[dict, dict, dict]:
    """(runtime, extras, dependency groups) of pyproject.toml, each name -> requirement or name -> its list."""
    toml = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r): r.replace(" ", "") for r in toml["project"]["dependencies"]}
    extras = {k: [_name(r) for r in v] for k, v in toml["project"].get("optional-dependencies", {}).items()}
    groups = {k: [_name(r) for r in v] for k, v in toml.get("dependency-groups", {}).items()}
    return runtime, extras, groups


def test_environment_yml_lists_everything_of_pyproject_with_the_same_pins():
    toml = tomllib.loads((ROOT / "pyproject.toml").read_text())
    every = [*toml["project"]["dependencies"], *sum(toml["project"]["optional-dependencies"].values(), [])]
    every += sum(toml["dependency-groups"].values(), [])
    pip_deps = {_name(r): r.replace(" ", "") for r in every}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_deps = {_name(r): r.replace(" ", "") for r in pip_section if not r.startswith("-e")}

    assert set(conda_deps) == set(pip_deps), (
        f"only in environment.yml: {sorted(set(conda_deps) - set(pip_deps))}; "
        f"only in pyproject.toml: {sorted(set(pip_deps) - set(conda_deps))}"
    )
    assert conda_deps == pip_deps, "same packages but different version pins"


def test_the_runtime_list_is_small_and_the_tools_are_extras_or_groups():
    runtime, extras, groups = _declared()
    for needed in ("torch", "torchvision", "jupyterlab", "papermill", "matplotlib", "seaborn", "pandas"):
        assert needed in runtime, needed
    assert extras == {"slurm": ["submitit"], "real-data": ["h5py", "simplejpeg"]}
    assert groups == {
        "test": ["pytest", "nbval", "playwright", "pypdfium2"],
        "lint": ["ruff"],
        "docs": ["mkdocs", "mkdocs-material"],
    }
    tools = {
        "pytest",
        "nbval",
        "playwright",
        "pypdfium2",
        "ruff",
        "mkdocs",
        "mkdocs-material",
        "submitit",
        "h5py",
        "simplejpeg",
    }
    assert not tools & set(runtime), "a user who pip-installs grl gets no test runner, linter or site generator"
    install = re.search(r"pip install --quiet (-e .*)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert '".[slurm,real-data]"' in install and all(f"--group {g}" in install for g in groups), install


# The import name of a distribution where the two differ.
_IMPORT_NAMES = {"PIL": "pillow", "yaml": "pyyaml", "jupyter_client": "jupyter-client", "jupyter_core": "jupyter-core"}


def test_every_third_party_import_of_grl_is_declared_and_an_extras_import_is_lazy():
    """What grl imports is in the runtime list, or in an extra and then imported inside a function only, so that
    ``import grl`` and every command but the extra's work without it."""
    runtime, extras, _ = _declared()
    extra_names = {name for names in extras.values() for name in names}
    problems = []
    for path in sorted((ROOT / "grl").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "grl":
                    continue
                dist = _IMPORT_NAMES.get(top, top).lower().replace("_", "-")
                where = f"{path.relative_to(ROOT)}:{node.lineno} imports {module}"
                if dist in extra_names and id(node) in top_level:
                    problems.append(f"{where} at module level, but {dist} is an extra")
                elif dist not in runtime and dist not in extra_names:
                    problems.append(f"{where}, which pyproject.toml does not declare")
    assert not problems, "\n".join(problems)


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
