"""The package layout: the layers of docs/architecture.md, no import cycle, no module over 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gbdt_pwiser"
MAX_LINES = 500
#: Modules allowed over the limit (none: keep it that way).
TOO_LONG_ALLOWED: set[str] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (not imported at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def import_graph() -> dict[str, set[str]]:
    """Edges ``module -> module of the package it imports`` (every import, also those inside functions).

    Imports under ``if TYPE_CHECKING:`` are skipped.
    ``from . import x`` points at the submodule ``x`` when there is one, else
    at the package; importing ``a.b.c`` points at ``a.b.c`` only (the
    packages above it are not counted as imports of the importer).
    """
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = [s if s in modules else base for s in subs]
            for t in targets:
                while t and t not in modules:  # "gbdt_pwiser.x.y" where y is a name in x
                    t = t.rpartition(".")[0]
                if t and t != name and t.split(".")[0] == "gbdt_pwiser":
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                return [*stack[stack.index(v) :], v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(graph):
        if u not in state:
            found = visit(u)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_relative_and_lazy_imports():
    g = import_graph()
    assert "gbdt_pwiser.sklearn" not in g["gbdt_pwiser"]  # only under TYPE_CHECKING
    assert "gbdt_pwiser._validation" in g["gbdt_pwiser.datasets.simulator"]
    assert "gbdt_pwiser.neural.bench" in g["gbdt_pwiser.cli.bench_neural"]  # module-level
    assert "gbdt_pwiser.sklearn" in g["gbdt_pwiser.cli._data"]  # inside a function


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


#: Modules every layer may import: the package's own helpers at the bottom.
BASE = {"_defaults", "_labels", "_threads", "_validation", "_bootstrap", "_version", "_optional", "exceptions"}

#: Layer (first name under gbdt_pwiser) -> the layers it may import, besides itself and BASE
#: (docs/architecture.md draws the same picture).
LAYERS: dict[str, set[str]] = {
    "kernels": set(),
    "objectives": {"kernels"},
    "datasets": set(),
    "calibration": set(),
    "metrics": {"objectives", "calibration"},
    "engines": {"objectives", "datasets", "calibration", "metrics"},
    "sklearn": {"engines", "objectives", "datasets", "calibration", "metrics", "pkg"},
    "dask": {"sklearn", "engines", "objectives", "datasets"},
    "evaluation": {"metrics", "sklearn", "dask", "datasets"},
    "neural": {"metrics", "datasets", "objectives"},
    "cli": {"sklearn", "dask", "datasets", "metrics", "evaluation", "neural", "engines", "calibration", "pkg"},
    "__main__": {"cli"},
    "_show_versions": {"kernels"},  # gbdt_pwiser.show_versions(): installed metadata, the CUDA probe
    # gbdt_pwiser/__init__.py
    "pkg": {"objectives", "sklearn", "datasets", "metrics", "calibration", "_show_versions", "evaluation"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return "pkg" if len(parts) == 1 else parts[1]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that crosses the layers the wrong way (see LAYERS)."""
    out = []
    for name, deps in graph.items():
        layer = _layer(name)
        allowed = BASE if layer in BASE else LAYERS.get(layer)
        if allowed is None:
            out.append(f"{name}: a new layer {layer!r}: add it to LAYERS and docs/architecture.md")
            continue
        out += [
            f"{name} imports {d}: layer {layer!r} may not import layer {_layer(d)!r}"
            for d in sorted(deps)
            if _layer(d) != layer and _layer(d) not in BASE and _layer(d) not in allowed
        ]
    return out


def test_layers_point_downwards():
    """Each module imports only from its own layer, the layers below it and BASE (none imports the CLI)."""
    assert layer_violations(import_graph()) == []


def test_the_layer_check_finds_violations():
    bad = {
        "gbdt_pwiser.engines.local": {"gbdt_pwiser.sklearn._drivers", "gbdt_pwiser._labels"},
        "gbdt_pwiser._labels": {"gbdt_pwiser.metrics"},
        "gbdt_pwiser.newlayer.x": set(),
    }
    found = layer_violations(bad)
    assert len(found) == 3 and "may not import layer 'sklearn'" in found[0] + found[1] + found[2]


#: The folders of tests/: one per layer of the package, and the project's own checks.
TEST_FOLDERS = {
    "objectives",
    "kernels",
    "gpu",
    "estimator",
    "engines",
    "datasets",
    "evaluation",
    "cli",
    "neural",
    "project",
    "bench",
}


def test_tests_are_filed_by_layer():
    """Every test module sits in the folder of the layer it tests (docs/architecture.md lists them)."""
    tests = PACKAGE.parent / "tests"
    assert sorted(p.name for p in tests.glob("test_*.py")) == []
    folders = {p.parent.relative_to(tests).parts[0] for p in tests.rglob("test_*.py")}
    assert folders == TEST_FOLDERS
