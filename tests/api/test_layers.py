"""The layers of docs/architecture.md import downward only; the composition roots (`up`,
`up_server`, `components`) may import everything, and the CLI reaches them only from the
commands that start a part."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cyclone"
COMPOSITION_ROOTS = {"up", "up_server", "components"}
MAY_IMPORT = {
    "api": set(),
    "kube": {"api"},
    "engine": {"api", "kube"},
    "node": {"api", "kube"},
    "resolvers": set(),
    "devcluster": {"api", "kube"},
    "server": {"api", "kube", "engine"},
    "cli": {"api", *COMPOSITION_ROOTS},
}
SERVER_MAY_USE_FROM_ENGINE = (
    "cyclone.engine.core",
    "cyclone.engine.config",  # settings model: the built-in resolver images
    "cyclone.engine.controllers.delegation",  # the engine's callback, exposed as REST
    "cyclone.engine.outbound",  # calls to tenant-chosen URLs (SCM listings)
    "cyclone.engine.placement",  # one reader of a tenant's execution context
)


def cyclone_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith("cyclone.")]
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_layer_imports_only_the_layers_below_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = layer_of(path)
        if layer in COMPOSITION_ROOTS or layer == "__init__":
            continue
        assert layer in MAY_IMPORT, f"{layer} is not in the layer table of this test"
        for line, module in cyclone_imports(path):
            target = module.split(".")[1]
            if target == layer:
                continue
            allowed = target in MAY_IMPORT[layer]
            if layer == "server" and target == "engine":
                allowed = module.startswith(SERVER_MAY_USE_FROM_ENGINE)
            if not allowed:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert wrong == []


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
