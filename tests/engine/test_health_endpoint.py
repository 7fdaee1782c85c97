"""The engine's metrics port answers `GET /healthz` (the image's HEALTHCHECK and the chart's
probes ask it) and still serves `/metrics`."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.clusters import eventually

from cyclone.components import serve_metrics


@contextlib.asynccontextmanager
async def metrics_server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    task = asyncio.create_task(serve_metrics(sock))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            async def up() -> bool | None:
                try:
                    return (await client.get("/healthz")).status_code == 200 or None
                except httpx.TransportError:
                    return None

            await eventually(up, timeout=10)
            yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_healthz_answers_ok_and_metrics_are_still_served() -> None:
    async with metrics_server() as client:
        health = await client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok")
        assert health.headers["content-type"].startswith("text/plain")
        head = await client.head("/healthz")
        assert (head.status_code, head.content) == (200, b"")
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        names = {family.name for family in text_string_to_metric_families(metrics.text)}
        assert "process_cpu_seconds" in names or "python_info" in names


async def test_healthz_refuses_other_methods_and_other_paths_are_not_health() -> None:
    async with metrics_server() as client:
        posted = await client.post("/healthz", content=b"x")
        assert posted.status_code == 405
        assert posted.headers["allow"] == "GET, HEAD"
        assert (await client.get("/healthz/extra")).text != "ok"
