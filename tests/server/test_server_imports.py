"""The server's modules import one another without a cycle, counting imports inside
functions too (they hide a cycle from Python, not from a reader)."""

from __future__ import annotations

import ast
from pathlib import Path

import cyclone

PACKAGE = "cyclone.server"
ROOT = Path(cyclone.__file__).parent.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The server modules `path` imports anywhere in it (`from x import y` counts `x.y`
    when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found.update(name for name in names if name in modules)
    return found


def server_import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in (ROOT / "cyclone" / "server").rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) - {name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_imports(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's `__init__` re-exports its modules; importing the package from one of
    its own modules is not a cycle through the package's other modules."""
    return {name: {t for t in targets if not name.startswith(t + ".")}
            for name, targets in graph.items()}


def test_the_server_modules_import_one_another_without_a_cycle():
    assert cycles(_package_imports(server_import_graph())) == []


def test_the_cycle_check_sees_a_cycle_hidden_inside_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_route_modules_of_tenants_and_integrations_import_only_records():
    graph = server_import_graph()
    routes = {f"{PACKAGE}.{name}" for name in ("tenants", "integrations", "clusters",
                                                "scmrepos")}
    records = {f"{PACKAGE}.tenant_records", f"{PACKAGE}.integration_records"}
    for record in records:
        assert graph[record] & routes == set(), record
