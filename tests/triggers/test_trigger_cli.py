"""`cyclone trigger create|list|delete` against a live server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from cyclone.api import keys
from cyclone.cli import objects
from cyclone.cli import triggers as trigger_cli
from cyclone.cli.session import global_options
from cyclone.cli.trigger_columns import next_fire_time
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app

from .support import ADMIN_TOKEN, NAMESPACE


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(global_options)
    trigger_cli.register(app)
    objects.register(app)
    return app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp_path = tmp_path_factory.mktemp("server")
    ready = threading.Event()
    holder: dict = {}

    async def main() -> None:
        cluster = EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.01)
        await cluster.start()
        application = create_app(cluster=cluster, data_dir=tmp_path / "data",
                                 admin_token=ADMIN_TOKEN)
        config = uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=1)
        uv = uvicorn.Server(config)
        holder.update(server=uv, cluster=cluster, loop=asyncio.get_running_loop())
        serving = asyncio.create_task(uv.serve())
        while not uv.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        holder["url"] = f"http://127.0.0.1:{uv.servers[0].sockets[0].getsockname()[1]}"
        ready.set()
        try:
            await serving
        finally:
            await cluster.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(20)
    try:
        yield holder
    finally:
        holder["server"].should_exit = True
        thread.join(10)


@pytest.fixture
def cyclone(server, tmp_path: Path):
    runner = CliRunner()
    env = {"CYCLONE_SERVER": server["url"], "CYCLONE_TOKEN": ADMIN_TOKEN,
           "CYCLONE_CONFIG": str(tmp_path / "cli.yaml"), "CYCLONE_TENANT": "",
           "COLUMNS": "200"}

    def invoke(*args: str):
        return runner.invoke(cli_app(), list(args), env=env, catch_exceptions=False)

    return invoke


def call(server, coro):
    return asyncio.run_coroutine_threadsafe(coro, server["loop"]).result(10)


@pytest.fixture(scope="module")
def workflow(server) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    base = server["url"] + "/apis/v1alpha1"
    httpx.post(f"{base}/projects", json={"metadata": {"name": "demo"}}, headers=headers)
    httpx.post(f"{base}/projects/demo/stages", headers=headers, json={
        "metadata": {"name": "build"},
        "spec": {"pod": {"spec": {"containers": [{"image": "alpine"}]}}}})
    response = httpx.post(f"{base}/projects/demo/workflows", headers=headers,
                          json={"metadata": {"name": "ci"},
                                "spec": {"stages": [{"name": "build"}]}})
    assert response.status_code == 201, response.text


def test_create_cron_trigger_and_list_next_fire_time_and_count(cyclone, server, workflow):
    created = cyclone("trigger", "create", "nightly", "-p", "demo", "-w", "ci",
                      "--cron", "0 2 * * *", "--timezone", "UTC",
                      "--concurrency-policy", "Forbid", "--param", "MODE=full")
    assert created.exit_code == 0, created.output
    assert "workflowtrigger/nightly created (next fire " in created.output
    obj = call(server, server["cluster"].get(kinds.WORKFLOW_TRIGGER, "nightly", NAMESPACE))
    assert obj["spec"]["cron"] == {"schedule": "0 2 * * *", "timezone": "UTC"}
    assert obj["spec"]["concurrencyPolicy"] == "Forbid"
    assert obj["spec"]["parameters"] == [{"name": "MODE", "value": "full"}]
    obj["status"] = {"count": 7}
    call(server, server["cluster"].replace_status(obj))
    listed = cyclone("trigger", "list", "-p", "demo")
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.output.splitlines() if line.startswith("nightly")]
    assert rows, listed.output
    row = rows[0]
    expected = next_fire_time(obj).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert expected.endswith("T02:00:00Z")
    assert expected in row and " 7 " in f"{row} "
    got = cyclone("get", "triggers", "-p", "demo")
    header = got.output.splitlines()[0]
    assert "NEXT FIRE" in header and "COUNT" in header
    assert expected in got.output
    as_json = cyclone("trigger", "list", "-p", "demo", "-o", "json")
    assert [t["metadata"]["name"] for t in json.loads(as_json.output)] == ["nightly"]


def test_create_scm_trigger_labels_its_integration(cyclone, server, workflow):
    created = cyclone("trigger", "create", "on-pr", "-p", "demo", "-w", "ci",
                      "--integration", "gh", "--repo", "octo/app", "--event", "push",
                      "--event", "pull-request", "--branch", "main", "--secret", "s")
    assert created.exit_code == 0, created.output
    obj = call(server, server["cluster"].get(kinds.WORKFLOW_TRIGGER, "on-pr", NAMESPACE))
    assert obj["metadata"]["labels"][keys.LABEL_TRIGGER_EVENT_SOURCE] == "gh"
    assert obj["spec"]["scm"] == {
        "repo": "octo/app", "secret": "s", "push": {"enabled": True, "branches": ["main"]},
        "pullRequest": {"enabled": True, "branches": ["main"]}}
    deleted = cyclone("trigger", "delete", "on-pr", "-p", "demo", "-w", "ci")
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    listed = cyclone("trigger", "list", "-p", "demo", "-o", "name")
    assert "on-pr" not in listed.output


def test_bad_arguments_are_one_line_errors(cyclone, workflow):
    both = cyclone("trigger", "create", "x", "-p", "demo", "-w", "ci", "--cron", "* * * * *",
                   "--integration", "gh")
    assert both.exit_code == 1 and "either --cron" in both.output
    bad = cyclone("trigger", "create", "x", "-p", "demo", "-w", "ci", "--cron", "* * *")
    assert bad.exit_code == 1 and "5 fields" in bad.output


def test_next_fire_time_honours_seconds_and_zone():
    now = datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    six = {"spec": {"type": "Cron", "cron": {"schedule": "*/10 * * * * *"}}}
    assert next_fire_time(six, now) == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    zoned = {"spec": {"type": "Cron", "cron": {"schedule": "0 9 * * *",
                                                "timezone": "Asia/Shanghai"}}}
    assert next_fire_time(zoned, now) == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert next_fire_time({"spec": {"type": "SCM"}}, now) is None
    disabled = {"spec": {**six["spec"], "disabled": True}}
    assert next_fire_time(disabled, now) is None
