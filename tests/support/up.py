"""`cyclone up` (server, engine, node agent) running inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from support.clusters import eventually
from support.sandboxes import kill_containers_under


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_engine_config(data_dir: Path, values: dict) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "engine.json").write_text(json.dumps(values))


@contextlib.asynccontextmanager
async def cyclone_up(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                     kubeconfig: Path | None = None, *,
                     open_control_cluster: bool = False,
                     **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    """`cyclone up` (with its serve hook) in this event loop; an admin client of its API.

    New tenants get no cluster opened for them unless `open_control_cluster` (the tests
    open their own); `settings` are further `UpOptions` fields."""
    from cyclone.up import UpOptions, up
    from cyclone.up_server import serve_api

    monkeypatch.setenv("CYCLONE_CONFIG", str(data_dir / "cli-config.yaml"))
    write_engine_config(data_dir, {"gc_delay_seconds": 0})
    port = _free_port()
    settings.setdefault("runtime", "host")
    options = UpOptions(data_dir=str(data_dir), port=port,
                        kubeconfig=str(kubeconfig) if kubeconfig else None,
                        open_control_cluster=open_control_cluster, **settings)  # type: ignore[arg-type]
    task = asyncio.create_task(up(options, serve=serve_api))
    base = f"http://127.0.0.1:{port}"
    try:
        async def healthy() -> bool:
            if task.done():
                task.result()
            return (await httpx.AsyncClient().get(f"{base}/healthcheck")).status_code == 200

        await eventually(healthy, timeout=60, interval=0.1)
        token = (data_dir / "admin-token").read_text().strip()
        async with httpx.AsyncClient(base_url=f"{base}/apis/v1alpha1", timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            yield http
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        kill_containers_under(data_dir)
