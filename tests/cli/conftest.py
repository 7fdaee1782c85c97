"""A real Cyclone server (create_app over an EmbeddedCluster) on 127.0.0.1, in a thread.

The CLI is synchronous, so the server runs in its own thread and event loop; tests reach
its cluster through `LiveServer.call`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from cyclone.cli.main import app
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app
from cyclone.server.artifacts import build_artifacts_router
from cyclone.server.logs import build_logs_router

ADMIN_TOKEN = "cli-admin-token"


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    cluster: EmbeddedCluster
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server per test module; tests use their own names (or tenants) to stay apart."""
    tmp_path = tmp_path_factory.mktemp("server")
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        cluster = EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.01)
        await cluster.start()
        application = create_app(
            cluster=cluster, data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN,
            extra_routers=[build_logs_router(prefix="", settle_grace=0.1),
                           build_artifacts_router(prefix="")],
        )
        config = uvicorn.Config(application, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        holder.update(server=server, cluster=cluster, loop=asyncio.get_running_loop())
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()
        holder["port"] = server.servers[0].sockets[0].getsockname()[1]
        ready.set()
        try:
            await serving
        finally:
            await cluster.close()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as err:  # surfaced to the test through `holder`
            holder["error"] = err
            ready.set()

    thread = threading.Thread(target=run, name="cyclone-test-server", daemon=True)
    thread.start()
    assert ready.wait(20), "the test server did not start"
    if "error" in holder:
        raise holder["error"]
    try:
        yield LiveServer(f"http://127.0.0.1:{holder['port']}", tmp_path / "data",
                         holder["cluster"], holder["loop"])
    finally:
        holder["server"].should_exit = True
        thread.join(10)


@pytest.fixture
def cli_env(tmp_path: Path, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Environment pointing the CLI at the live server as admin, with a private config."""
    monkeypatch.setenv("CYCLONE_CONFIG", str(tmp_path / "cli-config.yaml"))
    for name in ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return {"CYCLONE_SERVER": live_server.url, "CYCLONE_TOKEN": ADMIN_TOKEN,
            "CYCLONE_CONFIG": str(tmp_path / "cli-config.yaml")}


@pytest.fixture
def cyclone(cli_env: dict):
    """Run `cyclone ARGS…` in-process; returns the click Result."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict | None = None):
        return runner.invoke(app, list(args), input=input, env={**cli_env, **(env or {})},
                             catch_exceptions=False)

    return invoke
