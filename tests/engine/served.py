"""The engine test environment with the real REST server beside it.

`served_env` runs the cluster, node agent and engine of `harness.running_env`, plus the
FastAPI app under uvicorn on a free port of 127.0.0.1, with its own connection to the same
cluster (a second handle on the SQLite file, or a second client of the kube-apiserver), as
`cyclone server` has. The engine's `callback_base_url` is that server, so a delegation's
`callbackURL` reaches the server's route over HTTP, and the server checks the token with
the engine key it reads from the cluster itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from cyclone.engine.config import EngineConfig
from cyclone.kube.clock import SYSTEM_CLOCK, Clock
from cyclone.kube.protocol import Cluster
from cyclone.server import create_app, serve

from .harness import Env, allow_local_addresses, running_env


@dataclass
class Served:
    env: Env
    base_url: str
    """The server's root URL, e.g. ``http://127.0.0.1:PORT``."""
    admin_token: str
    http: httpx.AsyncClient
    """A client of the server's root without credentials, as an outside system is."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def _server_cluster(env: Env) -> AsyncIterator[Cluster]:
    if env.backend == "kube":
        from support.kube_engine import engine_plane

        from cyclone.kube.remote import RemoteCluster

        cluster: Cluster = RemoteCluster.from_kubeconfig(engine_plane().kubeconfig)
    else:
        from cyclone.kube.embedded import EmbeddedCluster

        cluster = EmbeddedCluster(env.data_dir / "cluster.db")
        await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.close()


@contextlib.asynccontextmanager
async def served_env(data_dir: Path, backend: str = "embedded",
                     clock: Clock = SYSTEM_CLOCK,
                     gc_delay_seconds: float | None = None) -> AsyncIterator[Served]:
    """Cluster, node agent, engine (keeping time by `clock`) and REST server until the
    block ends; the default tenant may use local addresses, so delegation URLs on
    127.0.0.1 are allowed. The engine collects finished runs `gc_delay_seconds` after
    they end (None: it does not collect)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    admin_token = secrets.token_hex(16)
    config = EngineConfig(gc_enabled=gc_delay_seconds is not None, watch_pod_events=False,
                          callback_base_url=base_url,
                          gc_delay_seconds=gc_delay_seconds or 0, gc_log_wait_seconds=0)
    async with (
        running_env(data_dir, config, backend=backend, clock=clock) as env,
        _server_cluster(env) as cluster,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        server_dir = data_dir / "server"
        server_dir.mkdir(parents=True, exist_ok=True)
        app = create_app(cluster=cluster, data_dir=server_dir, admin_token=admin_token,
                         server_url=base_url)
        task = asyncio.create_task(serve(app, "127.0.0.1", port))
        try:
            await _wait_healthy(http, task)
            await allow_local_addresses(env.cluster)
            yield Served(env, base_url, admin_token, http)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _wait_healthy(http: httpx.AsyncClient, task: asyncio.Task) -> None:
    """Until the server answers its health check (its start-up writes are done then);
    a server that stopped raises its error at once."""
    async def healthy() -> None:
        while True:
            if task.done():
                task.result()
                raise RuntimeError("the server stopped before it answered")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthcheck")).status_code == 200:
                    return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(healthy(), 60)
