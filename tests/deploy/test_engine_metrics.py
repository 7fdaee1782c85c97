"""`cyclone engine` alone serves its Prometheus metrics on `--metrics-port`."""

from __future__ import annotations

import asyncio
import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.clusters import eventually

from cyclone.components import DEFAULT_METRICS_PORT
from cyclone.devcluster.plane import free_port

from .test_components import cyclone, stop


async def test_the_engine_serves_its_queue_metrics_on_the_metrics_port(tmp_path):
    port = free_port()
    log = tmp_path / "engine.log"
    process = await cyclone("engine", "--embedded", str(tmp_path / "c.db"),
                            "--metrics-port", str(port), log=log)
    try:
        async def scraped() -> str | None:
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            except httpx.HTTPError:
                return None
            text = response.text
            return text if 'controller="workflowrun"' in text else None

        text = await eventually(scraped, timeout=30)
        families = {family.name for family in text_string_to_metric_families(text)}
        assert {"cyclone_workqueue_depth", "cyclone_workqueue_adds",
                "cyclone_kube_client_requests", "cyclone_runs_in_flight"} <= families
    finally:
        assert await stop(process) == 0, log.read_text()


async def test_a_metrics_port_in_use_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "engine.log"
        process = await cyclone("engine", "--embedded", str(tmp_path / "c.db"),
                                "--metrics-port", str(port), log=log)
        code = await asyncio.wait_for(process.wait(), 30)
    lines = log.read_text().strip().splitlines()
    assert code == 1
    assert lines[-1] == f"error: cyclone engine: cannot serve metrics on 0.0.0.0:{port}: " \
                        "Address already in use"
    assert "Traceback" not in log.read_text()


async def test_the_default_metrics_port_taken_is_a_warning_not_a_stop(tmp_path):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("0.0.0.0", DEFAULT_METRICS_PORT))
            taken.listen()
        except OSError:
            pass  # taken by another process: the same case
        log = tmp_path / "engine.log"
        process = await cyclone("engine", "--embedded", str(tmp_path / "c.db"), log=log)
        try:
            await eventually(lambda: "engine ready" in log.read_text(), timeout=30)
        finally:
            assert await stop(process) == 0, log.read_text()
    text = log.read_text()
    assert f"cannot serve metrics on 0.0.0.0:{DEFAULT_METRICS_PORT}" in text
    assert "/metrics is not served (choose a port with --metrics-port)" in text
