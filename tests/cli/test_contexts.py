"""`cyclone config` and how the CLI picks its server, tenant and token from named contexts,
against a live `cyclone up`: flags over the environment over the context."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.live_up import LiveUp, live_up

PROJECT = "ctx-demo"


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("contexts")) as running:
        project = running.data_dir / "project.yaml"
        project.write_text(f"kind: Project\nmetadata: {{name: {PROJECT}}}\n")
        applied = running.run_cli("apply", "-f", str(project))
        assert applied.returncode == 0, applied.stderr
        yield running


def cli(instance: LiveUp, config: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return instance.run_cli(*args, env={"CYCLONE_CONFIG": str(config), **env})


def projects(instance: LiveUp, config: Path, *args: str, **env: str) -> list[str]:
    result = cli(instance, config, *args, "get", "projects", "-o", "name", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_contexts_are_created_listed_switched_and_deleted(instance, tmp_path) -> None:
    config = tmp_path / "config.yaml"
    token_file = instance.data_dir / "admin-token"
    made = cli(instance, config, "config", "set-context", "live", "--server", instance.url,
               "--token-file", str(token_file), "--tenant", "system")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "context 'live' created (current)\n"
    other = cli(instance, config, "config", "set-context", "broken", "--server",
                instance.url, "--token", "not-the-token")
    assert other.stdout == "context 'broken' created\n"
    listed = cli(instance, config, "config", "get-contexts")
    assert listed.stdout.splitlines() == [
        line.rstrip() for line in [
            "CURRENT   NAME     SERVER" + " " * (len(instance.url) - 6)
            + "   TENANT   AUTH",
            f"*         live     {instance.url}   system   file:{token_file}",
            f"          broken   {instance.url}            token",
        ]]
    assert projects(instance, config) == [f"project/{PROJECT}"]
    switched = cli(instance, config, "config", "use-context", "broken")
    assert switched.stdout == "switched to context 'broken'\n"
    assert cli(instance, config, "config", "current-context").stdout == "broken\n"
    refused = cli(instance, config, "get", "projects")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: not authorised: invalid token")
    assert projects(instance, config, "--context", "live") == [f"project/{PROJECT}"]
    deleted = cli(instance, config, "config", "delete-context", "broken")
    assert deleted.stdout == "context 'broken' deleted; no context is current now\n"
    none = cli(instance, config, "config", "current-context")
    assert none.returncode == 1
    assert none.stderr == (f"error: no current context in {config} (set one with "
                           "`cyclone config use-context NAME`)\n")
    assert yaml.safe_load(config.read_text()) == {"contexts": [
        {"name": "live", "server": instance.url, "tenant": "system",
         "tokenFile": str(token_file)}]}
    assert cli(instance, config, "config", "get-contexts", "-o", "name").stdout == "live\n"


def test_a_token_file_is_read_on_each_command(instance, tmp_path) -> None:
    config = tmp_path / "config.yaml"
    token_file = tmp_path / "token"
    token_file.write_text("stale\n")
    cli(instance, config, "config", "set-context", "rotating", "--server", instance.url,
        "--token-file", str(token_file))
    assert cli(instance, config, "get", "projects").returncode == 1
    token_file.write_text(instance.token + "\n")
    assert projects(instance, config) == [f"project/{PROJECT}"]
    token_file.unlink()
    missing = cli(instance, config, "get", "projects")
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        f"error: cannot read the token file {token_file} of context 'rotating': ")
    assert len(missing.stderr.splitlines()) == 1


def test_flags_override_the_environment_which_overrides_the_context(instance, tmp_path) -> None:
    config = tmp_path / "config.yaml"
    cli(instance, config, "config", "set-context", "wrong", "--server", instance.url,
        "--token", "wrong-token", "--tenant", "no-such-tenant")
    assert cli(instance, config, "get", "projects").returncode == 1
    from_env = projects(instance, config, CYCLONE_TOKEN=instance.token,
                        CYCLONE_TENANT="system")
    assert from_env == [f"project/{PROJECT}"]
    from_flags = projects(instance, config, "--token", instance.token, "--tenant", "system",
                          CYCLONE_TOKEN="also-wrong")
    assert from_flags == [f"project/{PROJECT}"]


def test_the_flat_config_file_is_read_as_a_default_context_and_kept_until_written(
        instance, tmp_path) -> None:
    config = tmp_path / "config.yaml"
    flat = f"server: {instance.url}\ntoken: {instance.token}\ntenant: system\n"
    config.write_text(flat)
    assert projects(instance, config) == [f"project/{PROJECT}"]
    assert cli(instance, config, "config", "current-context").stdout == "default\n"
    assert config.read_text() == flat
    added = cli(instance, config, "config", "set-context", "spare", "--server",
                "http://127.0.0.1:1")
    assert added.returncode == 0, added.stderr
    assert yaml.safe_load(config.read_text()) == {
        "current-context": "default",
        "contexts": [
            {"name": "default", "server": instance.url, "tenant": "system",
             "token": instance.token},
            {"name": "spare", "server": "http://127.0.0.1:1"},
        ]}
    assert projects(instance, config) == [f"project/{PROJECT}"]


@pytest.mark.parametrize(("args", "message"), [
    (("--context", "nope", "get", "projects"), "error: no context named 'nope' in "),
    (("config", "use-context", "nope"), "error: no context named 'nope' (known: none)"),
    (("config", "delete-context", "nope"), "error: no context named 'nope'"),
    (("config", "set-context", "new"), "error: context 'new' does not exist yet: give its "
                                       "--server"),
])
def test_unknown_contexts_are_one_line(instance, tmp_path, args, message) -> None:
    result = cli(instance, tmp_path / "config.yaml", *args)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1


def test_a_config_file_that_cannot_be_parsed_is_reported_and_never_overwritten(
        instance, tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("contexts: [unclosed\n")
    result = cli(instance, config, "get", "projects")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: the CLI config {config} is not valid: ")
    assert len(result.stderr.splitlines()) == 1
    refused = cli(instance, config, "config", "set-context", "x", "--server", instance.url)
    assert refused.returncode == 1
    assert config.read_text() == "contexts: [unclosed\n"
    with_flags = projects(instance, config, "--server", instance.url, "--token",
                          instance.token)
    assert with_flags == [f"project/{PROJECT}"]
