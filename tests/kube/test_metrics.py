"""The work-queue, controller and API-client metrics, read as deltas of the process's
registry (each test uses a controller name of its own)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.controller import Controller
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import AlreadyExists, NotFound
from cyclone.kube.workqueue import WorkQueue


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


async def test_a_queue_reports_its_depth_adds_and_how_long_keys_waited():
    name = unique("queue")
    queue = WorkQueue(name=name)
    queue.add("ns/a")
    queue.add("ns/b")
    queue.add("ns/a")
    assert sample("cyclone_workqueue_depth", controller=name) == 2
    assert sample("cyclone_workqueue_adds_total", controller=name) == 2
    await asyncio.sleep(0.02)
    key = await queue.get()
    assert sample("cyclone_workqueue_depth", controller=name) == 1
    assert sample("cyclone_workqueue_queue_duration_seconds_count", controller=name) == 1
    assert sample("cyclone_workqueue_queue_duration_seconds_sum", controller=name) >= 0.02
    queue.add(key)
    assert sample("cyclone_workqueue_depth", controller=name) == 1
    queue.done(key)
    assert sample("cyclone_workqueue_depth", controller=name) == 2
    queue.add_rate_limited("ns/c")
    assert sample("cyclone_workqueue_retries_total", controller=name) == 1
    queue.shutdown()
    assert sample("cyclone_workqueue_depth", controller=name) == 0


async def test_a_controller_reports_reconcile_time_and_errors():
    name = unique("controller")
    calls: list[str] = []

    async def reconcile(key: str) -> None:
        calls.append(key)
        await asyncio.sleep(0.01)
        if len(calls) == 1:
            raise RuntimeError("transient")

    controller = Controller(name, reconcile, workers=1)
    controller.queue._base_delay = 0.001
    async with asyncio.TaskGroup() as group:
        task = group.create_task(controller.run())
        controller.queue.add("ns/a")
        await eventually(lambda: sample(
            "cyclone_workqueue_work_duration_seconds_count", controller=name) == 2)
        task.cancel()
    assert sample("cyclone_reconcile_errors_total", controller=name) == 1
    assert sample("cyclone_workqueue_retries_total", controller=name) == 1
    assert sample("cyclone_workqueue_work_duration_seconds_sum", controller=name) >= 0.02


async def test_the_embedded_cluster_counts_requests_by_verb_and_code(tmp_path: Path):
    def requests(verb: str, code: str) -> float:
        return sample("cyclone_kube_client_requests_total", cluster="embedded", verb=verb,
                      code=code)

    cluster = EmbeddedCluster(tmp_path / "c.db")
    await cluster.start()
    try:
        before = {(v, c): requests(v, c) for v, c in
                  [("POST", "201"), ("GET", "200"), ("GET", "404"), ("POST", "409")]}
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "metered"}}
        await cluster.create(namespace)
        await cluster.get(kinds.NAMESPACE, "metered")
        with pytest.raises(NotFound):
            await cluster.get(kinds.NAMESPACE, "missing")
        with pytest.raises(AlreadyExists):
            await cluster.create(namespace)
    finally:
        await cluster.close()
    assert {key: requests(*key) - count for key, count in before.items()} == {
        ("POST", "201"): 1, ("GET", "200"): 1, ("GET", "404"): 1, ("POST", "409"): 1}
