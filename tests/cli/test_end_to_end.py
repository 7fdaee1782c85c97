"""The CLI against a whole Cyclone: `up` (embedded cluster, node agent on the host runtime,
engine) serving the REST API with the log collector, in a thread of its own."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.live_up import live_up
from typer.testing import CliRunner

from cyclone.cli.config import load_cli_config
from cyclone.cli.main import app
from cyclone.up_server import instance_context_name

WORKFLOWS = """\
kind: Project
metadata: {name: e2e}
---
kind: Stage
metadata: {name: greet, labels: {project.cyclone.dev/name: e2e}}
spec:
  pod:
    inputs:
      arguments: [{name: who, value: world}]
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo hello {{ who }}; echo using $API_KEY; echo done"]
        env:
        - name: API_KEY
          valueFrom: {secretKeyRef: {name: api, key: key}}
---
kind: Stage
metadata: {name: check, labels: {project.cyclone.dev/name: e2e}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo checked"]
---
kind: Stage
metadata: {name: broken, labels: {project.cyclone.dev/name: e2e}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo about to fail; exit 3"]
---
kind: Workflow
metadata: {name: hello, labels: {project.cyclone.dev/name: e2e}}
spec:
  stages:
  - name: greet
  - {name: check, depends: [greet]}
---
kind: Workflow
metadata: {name: failing, labels: {project.cyclone.dev/name: e2e}}
spec:
  stages:
  - name: broken
  - {name: check, depends: [broken]}
"""


async def _seed_secret(ctx) -> None:
    from cyclone.kube.errors import AlreadyExists

    with contextlib.suppress(AlreadyExists):
        await ctx.cluster.create({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "api", "namespace": "cyclone-system"},
            "data": {"key": base64.b64encode(b"sk-live-0123456789").decode()}})


@pytest.fixture(scope="module")
def cyclone_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`cyclone up` as the command runs it (serve hook `serve_api`); yields its URL and the
    CLI config file it wrote."""
    with live_up(tmp_path_factory.mktemp("up"), before_serve=_seed_secret) as instance:
        yield instance.url, instance.config


@pytest.fixture
def cli(cyclone_up: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The CLI with no flags and no CYCLONE_SERVER/TOKEN: only the config `up` wrote."""
    _, config = cyclone_up
    monkeypatch.setenv("CYCLONE_CONFIG", str(config))
    for name in ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    path = tmp_path / "e2e.yaml"
    path.write_text(WORKFLOWS)
    applied = invoke("apply", "-f", str(path))
    assert applied.exit_code == 0, applied.output
    return invoke


def test_up_writes_the_cli_config_with_its_admin_token(cyclone_up) -> None:
    url, config = cyclone_up
    settings = yaml.safe_load(config.read_text())
    token_file = config.parent / "admin-token"
    name = instance_context_name(int(url.rsplit(":", 1)[1]))
    assert settings == {"current-context": name, "contexts": [
        {"name": name, "server": url, "tenant": "system", "tokenFile": str(token_file)}]}
    admin_token = token_file.read_text().strip()
    assert load_cli_config(config) == {"server": url, "token": admin_token, "tenant": "system"}


def test_run_watch_succeeds_and_its_masked_logs_are_readable(cli) -> None:
    result = cli("run", "hello", "-p", "e2e", "--name", "hello-1", "--param", "greet.who=cli",
                 "--watch", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("workflowrun/hello-1 Succeeded")
    assert "greet: Succeeded" in result.stdout and "check: Succeeded" in result.stdout
    deadline = time.monotonic() + 60
    while True:
        logs = cli("logs", "hello-1", "--stage", "greet")
        if logs.exit_code == 0 and "done" in logs.stdout:
            break
        assert time.monotonic() < deadline, logs.output
        time.sleep(0.2)
    assert logs.stdout == "hello cli\nusing ***\ndone\n"
    followed = cli("logs", "hello-1", "-f")
    assert followed.exit_code == 0, followed.output
    assert followed.stdout == (
        "==> greet <==\nhello cli\nusing ***\ndone\n==> check <==\nchecked\n")


def test_run_watch_of_a_failing_workflow_exits_non_zero_with_the_reason(cli) -> None:
    result = cli("run", "failing", "-p", "e2e", "--name", "failing-1", "--watch",
                 "--interval", "0.2")
    assert result.exit_code == 1
    assert "broken: Failed" in result.stdout
    assert result.stderr.startswith("error: workflowrun failing-1 Failed: stage broken failed")
    assert "Traceback" not in result.output
