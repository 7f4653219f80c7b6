"""The package's structure, held: imports run down the layers and never in a circle, and the run kind's name is
written only in the registry and the kind's own package.

Every import counts, also one inside a function: an import moved into a function
to dodge a circle is still a circle. Third-party modules are not checked.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from msr import kinds

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*sorted((ROOT / "msr").rglob("*.py")), *sorted((ROOT / "ui").glob("*.py")),
           *sorted((ROOT / "views").glob("*.py")), ROOT / "app.py", *sorted((ROOT / "benchmarks").glob("*.py"))]

# The layers, lowest first. A module imports only from its own layer and the layers below it. Packages named
# together in one layer are siblings that never import each other (each run kind stands alone).
LAYERS: list[tuple[str, ...]] = [
    ("msr.core",),  # settings, layers, models, meta, data, stats, groups, symmetry, loop: no disk, no processes
    ("msr.mnist", "msr.synthetic"),  # one package per run kind
    ("msr.kinds",),  # the run-kind registry
    ("msr.store",),  # the run folder
    ("msr.runner",),  # the one driver, processes, admission, sweeps
    ("msr.analysis",),  # the lens, inspection, tables, the ablation
    ("msr.viz",),  # charts and figures
    ("msr.api",),  # the Python API: train, load_run, runs, Run
    # The package itself: its __init__ is the façade that gives the API's names at the top level (msr.train),
    # imported lazily on first use (a module __getattr__), so ``import msr`` stays light. It sits above the
    # API it shows; nothing in the package imports it.
    ("msr",),
    ("msr.cli",),  # the command line, one module per subcommand
    ("msr.__main__",),  # python -m msr
    ("ui",),  # Streamlit widgets shared by pages
    ("views",),  # the pages
    ("app", "benchmarks"),  # the app's entry point; the benchmark scripts
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in SOURCES}
PACKAGES = {module_name(p) for p in SOURCES if p.name == "__init__.py"}


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the sibling package it belongs to)."""
    best = None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (i, name)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best


def imports_of(module: str) -> set[str]:
    """The project modules ``module`` imports, anywhere in its code (functions included)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # msr.core.data.X -> msr.core.data
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_import_runs_down_the_layers():
    wrong = []
    for module, targets in GRAPH.items():
        here, own = layer_of(module)
        for target in targets:
            there, theirs = layer_of(target)
            if there > here:
                wrong.append(f"{module} -> {target} (up from {LAYERS[here]} to {LAYERS[there]})")
            elif there == here and theirs != own and len(LAYERS[here]) > 1 and here < len(LAYERS) - 1:
                wrong.append(f"{module} -> {target} (sideways: {own} and {theirs} stand apart)")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_circles():
    """Tarjan's strongly connected components of the module graph: each must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
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
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_package_never_imports_streamlit():
    heavy = []
    for module, path in MODULES.items():
        if layer_of(module)[1].startswith("msr"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                heavy += [f"{module}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert not heavy


def test_the_check_sees_imports_inside_functions():
    """A circle hidden in a function is found (the check itself, on a made-up pair of modules)."""
    source = "def late():\n    from .b import thing\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) and n.module == "b" for n in ast.walk(tree))
    assert "msr.store.reader" in GRAPH["msr.runner.execute"]  # a module-level import
    assert "msr.runner.execute" in GRAPH["msr.cli.common"]


# ------------------------------------------------------------------ the kind's name
# The data source "mnist" (full MNIST, as config.json's data_source says) shares its name with the run kind; it
# is defined once, in msr.core.choices.
DATA_SOURCE_NAME = ("msr/core/choices.py", "mnist")


def kind_package(kind) -> str:
    """The package a kind's RunKind is built in (msr.mnist, msr.synthetic)."""
    return kind.config.__module__.rpartition(".")[0]


def test_the_kind_names_appear_only_in_the_registry_and_their_packages():
    names = set(kinds.KINDS)
    packages = {kind_package(k) for k in kinds.KINDS.values()}
    found = []
    for module, path in MODULES.items():
        if module == "msr.kinds" or any(module == p or module.startswith(p + ".") for p in packages):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                where = str(path.relative_to(ROOT))
                if (where, node.value) == DATA_SOURCE_NAME:
                    continue
                found.append(f"{where}:{node.lineno}: {node.value!r}")
    assert not found, "a run kind's name outside the registry and its package (ask msr.kinds instead):\n" + \
        "\n".join(found)


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_each_kind_lives_in_its_own_package(name):
    kind = kinds.KINDS[name]
    package = kind_package(kind)
    assert package.startswith("msr.") and package in PACKAGES
    assert kind.trainer.__module__.startswith(package + ".")
    assert layer_of(package)[0] == layer_of("msr.mnist")[0]
