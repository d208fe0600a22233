"""The package's import graph stays layered: no circles, and nothing imports a module above it.

Every ``import`` of grl/ counts, the ones inside functions included (a lazy import is still a dependency).
The layers are the picture of docs/architecture.md; a new module must be placed in one of them here.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. Each entry names a module or a package (and everything in it); a layer may be split into
# floors, bottom to top, where its modules depend on each other in one direction.
LAYERS = [
    (
        "foundation",
        [
            ["grl", "grl.config", "grl.paths", "grl.utils", "grl.provenance", "grl.stats", "grl.run_folder"],
            ["grl.evaluation"],
            ["grl.reranking"],
        ],
    ),
    (
        "data",
        [
            ["grl.data.datasets", "grl.data.sampling", "grl.data.transforms"],  # layouts, frame reading
            ["grl.data.study_sets"],  # MARS, iLIDS-VID, PRID2011
            ["grl.data.extra_datasets"],  # DukeMTMC-VideoReID, LS-VID, check-data
            ["grl.data.synthetic", "grl.data.frame_cache", "grl.data.loader"],  # the generator, the cache
            ["grl.data.config_dataset"],
            ["grl.data"],
        ],
    ),
    (
        "model",
        [
            ["grl.models.backbone", "grl.models.trl", "grl.losses"],
            ["grl.models.pretrain"],
            ["grl.models.grl"],
            ["grl.models"],
        ],
    ),
    ("catalogue", [["grl.catalogue"], ["grl.experiments"]]),
    (
        "engine",
        [
            ["grl.engine.distributed", "grl.engine.events", "grl.engine.guards"],
            ["grl.engine.features", "grl.engine.state"],
            ["grl.engine.build"],
            ["grl.engine.inference", "grl.engine.trainer"],
            ["grl.engine"],
        ],
    ),
    (
        "results",
        [
            ["grl.viz.images"],
            ["grl.viz.figure4", "grl.viz.curves", "grl.viz.ranked"],
            ["grl.viz", "grl.results.frame", "grl.results.runs"],
            ["grl.results.tables", "grl.results.comparisons"],
            ["grl.results.reference", "grl.results.render", "grl.results.figures", "grl.results.precision"],
            ["grl.results.summary"],
            ["grl.results"],
        ],
    ),
    (
        "batch",
        [
            ["grl.batch.core"],
            ["grl.batch.notebook", "grl.batch.shared", "grl.batch.locks"],
            ["grl.batch.runs", "grl.batch.local", "grl.batch.adaptive"],
            ["grl.batch.cluster"],
            ["grl.batch.study", "grl.batch.calibration"],
            ["grl.batch"],
        ],
    ),
    (
        "entry points",
        [
            ["grl.bench"],
            ["grl.cli.options"],
            [
                "grl.cli.reproduce",
                "grl.cli.compare",
                "grl.cli.list_",
                "grl.cli.calibrate",
                "grl.cli.train",
                "grl.cli.evaluate",
                "grl.cli.extract",
                "grl.cli.visrank",
                "grl.cli.check_data",
                "grl.cli.synth",
                "grl.cli.bench",
                "grl.cli.refresh_notebooks",
            ],
            ["grl.cli"],
            ["grl.__main__"],
        ],
    ),
]


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for path in sorted((root / "grl").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the grl modules it imports (``from grl.x import y`` is grl.x.y when y is a module)."""
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in mods else base)
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def floor_of(module: str, layers=LAYERS) -> tuple[int, int] | None:
    """(layer, floor) of the longest entry naming ``module`` or a package holding it."""
    best, best_len = None, -1
    for i, (_, floors) in enumerate(layers):
        for j, entries in enumerate(floors):
            for entry in entries:
                if (module == entry or module.startswith(entry + ".")) and len(entry) > best_len:
                    best, best_len = (i, j), len(entry)
    return best


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    return [f"{a} -> {b}" for a in sorted(graph) for b in sorted(graph[a]) if floor_of(b, layers) > floor_of(a, layers)]


def test_the_checks_catch_a_circle_and_an_upward_import():
    layers = [("low", [["p.low"]]), ("high", [["p.high"]])]
    graph = {"p.low": {"p.high"}, "p.high": {"p.low"}, "p.low.x": {"p.low"}}
    assert cycles(graph) == [["p.high", "p.low"]]
    assert upward_imports(graph, layers) == ["p.low -> p.high"]
    assert floor_of("p.low.x", layers) == (0, 0) and floor_of("q", layers) is None


def test_every_module_has_a_place_in_the_layers():
    unplaced = [m for m in modules() if floor_of(m) is None]
    assert not unplaced, f"place these modules in tests/test_architecture.py LAYERS: {unplaced}"


def test_grl_has_no_import_circles():
    assert cycles(import_graph(modules())) == []


def test_nothing_in_grl_imports_a_module_above_it():
    assert upward_imports(import_graph(modules())) == []


def test_the_batch_is_a_package_of_short_modules_whose_cluster_executor_sits_on_its_core():
    mods = modules()
    graph = import_graph(mods)
    batch = {m: p for m, p in mods.items() if m.startswith("grl.batch.")}
    assert {"grl.batch.core", "grl.batch.local", "grl.batch.cluster", "grl.batch.notebook"} <= set(batch)
    too_long = {m: n for m, p in batch.items() if (n := len(p.read_text().splitlines())) > 420}
    assert not too_long, f"one job per module, about 400 lines at most: {too_long}"
    assert "grl.batch.core" in graph["grl.batch.cluster"]
    assert not any(m.startswith("grl.batch.cluster") for m in graph["grl.batch.core"] | graph["grl.batch.local"])


def test_only_the_run_folder_module_spells_the_run_folders_file_names():
    """grl.run_folder owns the names of a run folder's files; elsewhere they are its constants or helpers."""
    from grl import run_folder

    offenders = []
    for path in sorted((ROOT / "grl").rglob("*.py")):
        if path.name == "run_folder.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if any(re.search(rf"(^|[/ ]){re.escape(name)}($|[ ,:;)])", node.value) for name in run_folder.FILES):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not offenders, "\n".join(offenders)


def test_no_module_imports_another_modules_private_names():
    """A name with a leading underscore is its module's own; what another module needs is public."""
    offenders = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grl"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    offenders.append(f"{name} imports {private} from {node.module}")
    assert not offenders, "\n".join(offenders)
