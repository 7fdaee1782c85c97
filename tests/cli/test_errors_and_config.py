from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.conftest import ADMIN_TOKEN
from cyclone.cli.config import load_cli_config, resolve_settings, write_cli_config
from cyclone.cli.main import app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cyclone(*args: str, env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """The installed entry point, as a user runs it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLONE_")}
    full_env.update({"CYCLONE_CONFIG": str(tmp_path / "none.yaml"), **env})
    return subprocess.run([sys.executable, "-c", "from cyclone.cli.main import app; app()",
                           *args], env=full_env, capture_output=True, text=True, timeout=60)


def test_unreachable_server_is_one_clear_line(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cyclone("get", "projects", env={"CYCLONE_SERVER": url}, tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: cannot reach the Cyclone server at {url}: is `cyclone up` running?\n"
    )
    assert result.stdout == ""


def test_usage_errors_are_one_line(tmp_path) -> None:
    missing = run_cyclone("run", "ci", env={}, tmp_path=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: Missing option '--project'")
    assert len(missing.stderr.splitlines()) == 1
    unknown = run_cyclone("frobnicate", env={}, tmp_path=tmp_path)
    assert unknown.returncode == 2
    assert len(unknown.stderr.splitlines()) == 1


def test_bad_token_is_reported_as_not_authorised(cyclone) -> None:
    result = cyclone("get", "projects", env={"CYCLONE_TOKEN": "wrong"})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not authorised: invalid token")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(("content", "message"), [
    ("kind: [unclosed", "is not valid YAML"),
    ("- just\n- a list\n", "document 1 is not an object"),
    ("metadata: {name: x}\n", "object 1 has no kind"),
    ("kind: Gadget\nmetadata: {name: x}\n", "unknown kind 'Gadget'"),
    ("kind: Stage\nmetadata: {name: x}\nspec: {}\n", "no project"),
])
def test_bad_input_files_are_one_line(cyclone, tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = cyclone("apply", "-f", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_missing_file_and_unknown_kind(cyclone, tmp_path) -> None:
    missing = cyclone("apply", "-f", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 1
    assert missing.stderr.startswith(f"error: cannot read {tmp_path / 'nope.yaml'}")
    kind = cyclone("get", "gadgets")
    assert kind.exit_code == 1
    assert kind.stderr.startswith("error: unknown kind 'gadgets'")


def test_server_validation_errors_reach_the_user(cyclone, tmp_path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("kind: Project\nmetadata: {name: p}\n---\n"
                    "kind: Workflow\nmetadata: {name: loop, labels: "
                    "{project.cyclone.dev/name: p}}\nspec:\n  stages:\n"
                    "  - {name: a, depends: [b]}\n  - {name: b, depends: [a]}\n")
    result = cyclone("apply", "-f", str(path))
    assert result.exit_code == 1
    assert result.stdout.strip() == "project/p created"
    assert result.stderr.startswith("error: Workflow 'loop': ")
    assert len(result.stderr.splitlines()) == 1


def test_written_config_is_private_and_used_without_flags(tmp_path, live_server,
                                                         monkeypatch) -> None:
    config = tmp_path / "cfg" / "config.yaml"
    monkeypatch.setenv("CYCLONE_CONFIG", str(config))
    for name in ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    written = write_cli_config(live_server.url, ADMIN_TOKEN, "system")
    assert written == config
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert load_cli_config() == {"server": live_server.url, "token": ADMIN_TOKEN,
                                 "tenant": "system"}
    result = CliRunner().invoke(app, ["tenant", "list", "-o", "name"])
    assert result.exit_code == 0, result.output
    assert "tenant/system" in result.stdout


def test_flags_and_environment_override_the_config_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CYCLONE_CONFIG", str(tmp_path / "config.yaml"))
    write_cli_config("http://file:1", "file-token", "file-tenant")
    assert resolve_settings() == resolve_settings(None, None, None)
    settings = resolve_settings("http://flag:2/", None, "flag-token")
    assert (settings.server, settings.tenant, settings.token) == (
        "http://flag:2", "file-tenant", "flag-token")


def test_default_config_path_follows_xdg(tmp_path, monkeypatch) -> None:
    from cyclone.cli.config import config_path

    monkeypatch.delenv("CYCLONE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "cyclone" / "config.yaml"
