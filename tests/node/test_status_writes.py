"""The agent writes pod statuses latest-wins: changes made while a write waits become one
write, the status never steps back, and the final status is always written."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import TooManyRequests
from cyclone.node import FakeRuntime
from node.helpers import (
    pod_manifest,
    running_agent,
    statuses,
    terminal,
    until,
    wait_for_pod,
    wait_for_pod_gone,
)

SPEC = {"containers": [{"name": "work", "image": "busybox"}]}
PHASE_ORDER = {"Pending": 0, "Running": 1, "Succeeded": 2, "Failed": 2}


class StatusWrites:
    """Passes calls through, recording the pod statuses written; status writes wait while
    `held` is cleared, and the first `refuse` of them are answered TooManyRequests."""

    def __init__(self, inner: Any, *, refuse: int = 0) -> None:
        self.inner = inner
        self.name = inner.name
        self.written: list[dict] = []
        self.waiting = 0
        self.held = asyncio.Event()
        self.held.set()
        self.refuse = refuse

    async def patch(self, kind: Any, name: str, patch: Any, namespace: str | None = None,
                    **options: Any) -> dict:
        if kind == kinds.POD and options.get("subresource") == "status":
            self.waiting += 1
            try:
                await self.held.wait()
            finally:
                self.waiting -= 1
            if self.refuse:
                self.refuse -= 1
                raise TooManyRequests("slow down")
            updated = await self.inner.patch(kind, name, patch, namespace, **options)
            self.written.append(patch["status"])
            return updated
        return await self.inner.patch(kind, name, patch, namespace, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def phases(written: list[dict]) -> list[str]:
    return [status["phase"] for status in written]


def never_steps_back(written: list[dict]) -> bool:
    ranks = [PHASE_ORDER[phase] for phase in phases(written)]
    return ranks == sorted(ranks)


async def test_a_pod_that_finishes_while_its_first_write_waits_gets_one_more_write(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    writes = StatusWrites(cluster)
    writes.held.clear()
    annotations = {"fake.cyclone.dev/duration-seconds": "0.2"}
    async with running_agent(writes, tmp_path / "node", FakeRuntime()) as agent:
        created = await cluster.create(pod_manifest("quick", SPEC, annotations=annotations))
        uid = created["metadata"]["uid"]
        await until(lambda: writes.waiting == 1)
        await until(lambda: uid in agent.workers and agent.workers[uid].main[0].exited)

        writes.held.set()
        pod = await wait_for_pod(cluster, "quick", terminal)

        assert len(writes.written) == 2
        assert phases(writes.written)[-1] == "Succeeded"
        assert never_steps_back(writes.written)
        assert pod["status"]["phase"] == "Succeeded"
        assert statuses(pod)["work"]["state"]["terminated"]["exitCode"] == 0


async def test_refused_writes_are_retried_until_the_final_status_is_written(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    writes = StatusWrites(cluster, refuse=3)
    async with running_agent(writes, tmp_path / "node", FakeRuntime()):
        await cluster.create(pod_manifest("refused", SPEC))
        pod = await wait_for_pod(cluster, "refused", terminal)

        assert pod["status"]["phase"] == "Succeeded"
        assert phases(writes.written)[-1] == "Succeeded"
        assert never_steps_back(writes.written)


async def test_a_pod_deleted_while_a_write_waits_has_its_final_status_written_first(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    writes = StatusWrites(cluster)
    writes.held.clear()
    annotations = {"fake.cyclone.dev/duration-seconds": "1000"}
    async with running_agent(writes, tmp_path / "node", FakeRuntime()) as agent:
        created = await cluster.create(pod_manifest("stopped", SPEC, annotations=annotations))
        uid = created["metadata"]["uid"]
        await until(lambda: writes.waiting == 1)
        await until(lambda: uid in agent.workers and agent.workers[uid].main[0].running)

        await cluster.delete(kinds.POD, "stopped", "default")
        await until(lambda: agent.workers[uid].main[0].exited)
        writes.held.set()
        await wait_for_pod_gone(cluster, "stopped")

        final = writes.written[-1]
        assert "terminated" in statuses({"status": final})["work"]["state"]
        assert never_steps_back(writes.written)


async def test_a_pod_that_ends_before_its_status_settles_gets_one_write(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    writes = StatusWrites(cluster)
    async with running_agent(writes, tmp_path / "node", FakeRuntime()) as agent:
        agent.context.statuses.settle_seconds = 600
        await cluster.create(pod_manifest("brief", SPEC))
        pod = await wait_for_pod(cluster, "brief", terminal)

        assert phases(writes.written) == ["Succeeded"]
        assert statuses(pod)["work"]["state"]["terminated"]["exitCode"] == 0


async def test_a_running_pod_is_written_once_its_status_has_settled(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    writes = StatusWrites(cluster)
    annotations = {"fake.cyclone.dev/duration-seconds": "1000"}
    async with running_agent(writes, tmp_path / "node", FakeRuntime()) as agent:
        agent.context.statuses.settle_seconds = 0.05
        await cluster.create(pod_manifest("long", SPEC, annotations=annotations))
        pod = await wait_for_pod(cluster, "long", lambda p: p["status"].get("phase") == "Running")

        assert statuses(pod)["work"]["state"]["running"]
        assert never_steps_back(writes.written)
