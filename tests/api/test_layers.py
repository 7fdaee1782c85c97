"""The layers of docs/architecture.md import downward only, and no module imports itself
back through others.

The composition roots (`up`, `up_server`, `components`, `node_components`) may import
everything; the CLI reaches them only from the commands that start a part. Imports inside
functions count like any other: hiding a cycle in a function body does not remove it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cyclone"
COMPOSITION_ROOTS = {"up", "up_server", "components", "node_components"}
MAY_IMPORT = {
    "api": set(),
    "kube": {"api"},
    "engine": {"api", "kube"},
    "node": {"api", "kube"},
    "resolvers": set(),
    "devcluster": {"api", "kube"},
    "server": {"api", "kube", "engine"},
    "ui": {"api", "kube", "engine", "server"},
    "cli": {"api", *COMPOSITION_ROOTS},
    "sdk": {"api", "cli"},
}
ENGINE_PARTS_THE_SERVER_MAY_NOT_USE = ("cyclone.engine.controllers", "cyclone.engine.manager")
"""The engine's controllers decide; the server states intent in objects and may share only
the engine's pure rules and its small readers (placement, run start, signing, outbound)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every Cyclone module the file imports; ``from package import
    module`` names the module, not the package."""
    known = modules()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith("cyclone.")]
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_layer_imports_only_the_layers_below_it():
    wrong = []
    for path in modules().values():
        layer = layer_of(path)
        if layer in COMPOSITION_ROOTS or layer == "__init__":
            continue
        assert layer in MAY_IMPORT, f"{layer} is not in the layer table of this test"
        for line, module in imported_modules(path):
            target = module.split(".")[1]
            if target == layer:
                continue
            allowed = target in MAY_IMPORT[layer]
            if layer in ("server", "ui") and module.startswith(
                    ENGINE_PARTS_THE_SERVER_MAY_NOT_USE):
                allowed = False
            if not allowed:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert wrong == []


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for _, module in imported_modules(path):
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_through_several_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_an_import_inside_a_function_counts(tmp_path: Path):
    source = tmp_path / "example.py"
    source.write_text("def later():\n    from cyclone.server import tenants\n")
    assert imported_modules(source) == [(2, "cyclone.server.tenants")]


def test_the_engine_core_does_no_io():
    io_modules = {"asyncio", "httpx", "socket", "sqlite3", "subprocess", "smtplib"}
    wrong = []
    for path in sorted((PACKAGE / "engine" / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
                if node.module.startswith(("cyclone.kube", "cyclone.engine.controllers")):
                    names.append(node.module)
            wrong += [f"{path.name}: {n}" for n in names
                      if n in io_modules or n.startswith("cyclone.")]
    assert wrong == []
