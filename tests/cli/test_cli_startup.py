"""`cyclone --help` starts without what only a command's work needs: the HTTP client, YAML,
rich's console (help is plain text), the pydantic models, lightkube, asyncio and the
server, engine and node packages are imported by the commands that use them. How fast it
starts is measured by benchmarks/cli_startup.py; this pins what it imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY_MODULES = (
    "httpx",
    "httpcore",
    "yaml",
    "pydantic",
    "pydantic_core",
    "lightkube",
    "croniter",
    "asyncio",
    "importlib.metadata",
    "rich.console",
    "rich.markdown",
    "rich.live",
    "typer.rich_utils",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "cryptography",
    "cyclone.api.common",
    "cyclone.api.registry",
    "cyclone.api.validation",
    "cyclone.cli.client",
    "cyclone.kube",
    "cyclone.engine",
    "cyclone.server",
    "cyclone.node",
    "cyclone.ui",
    "cyclone.up",
    "cyclone.components",
)
"""Modules (and their submodules) that `cyclone --help` must not import."""

LOADED_AFTER = """
import json, sys
argv, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["cyclone", *argv]
import cyclone.cli.main
code = None
if argv:
    try:
        cyclone.cli.main.main()
    except SystemExit as done:
        code = done.code
print(json.dumps({"code": code, "loaded": [
    h for h in heavy if any(m == h or m.startswith(h + ".") for m in sys.modules)]}))
"""


def modules_loaded_by(argv: list[str]) -> tuple[object, list[str]]:
    """The exit status of `cyclone ARGV` run in a fresh interpreter, and which of the heavy
    modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, json.dumps(argv), json.dumps(HEAVY_MODULES)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["code"], answer["loaded"]


@pytest.mark.parametrize("argv", [
    [],
    ["--help"],
    ["run", "--help"],
    ["get", "--help"],
    ["tenant", "--help"],
    ["tenant", "create", "--help"],
    ["server", "--help"],
    ["logs", "--help"],
], ids=lambda argv: " ".join(argv) or "import")
def test_help_imports_no_heavy_module(argv: list[str]) -> None:
    code, loaded = modules_loaded_by(argv)
    assert code in (None, 0)
    assert loaded == []


def test_a_command_still_imports_what_it_uses() -> None:
    code, loaded = modules_loaded_by(["crds"])
    assert code == 0
    assert "pydantic" in loaded
