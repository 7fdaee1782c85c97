"""A pod that ended keeps no worker on its node until it is deleted, and nothing about it
runs or is written again: not for a later event, not after the agent restarts. Its
deletion still stops, removes and finalizes it. On both clusters."""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.clusters import CLUSTER_FACTORIES, cluster_params, eventually

from cyclone.kube import kinds
from cyclone.kube.errors import Gone, NotFound
from cyclone.kube.protocol import Cluster, WatchEvent
from cyclone.node import FakeRuntime
from cyclone.node.runtimes.base import ContainerLaunch
from node.helpers import pod_manifest, running_agent, terminal, wait_for_pod, wait_for_pod_gone

SPEC = {
    "initContainers": [{"name": "prepare", "image": "busybox"}],
    "containers": [{"name": "work", "image": "busybox"}],
}


class CountingRuntime(FakeRuntime):
    """The fake runtime, counting the containers it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: Counter[tuple[str, str]] = Counter()

    async def start(self, launch: ContainerLaunch) -> None:
        self.starts[(launch.pod_uid, launch.name)] += 1
        await super().start(launch)

    def knows(self, uid: str) -> bool:
        return any(pod_uid == uid for pod_uid, _ in self._containers)


class ExpiringWatches:
    """Passes calls through; once `expire` is set, a watch stream ends with Gone instead
    of giving its next event (the event is lost, and the agent lists again)."""

    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        self.name = inner.name
        self.expire = False

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        async for event in self.inner.watch(*args, **kwargs):
            if self.expire:
                self.expire = False
                raise Gone("too old resource version")
            yield event

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with CLUSTER_FACTORIES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
def node_name() -> str:
    return f"ended-{secrets.token_hex(3)}"


def manifest(name: str, node: str) -> dict:
    return pod_manifest(name, SPEC, node=node)


async def ended(cluster: Cluster, name: str) -> dict:
    return await wait_for_pod(cluster, name, terminal, within=30)


async def test_an_ended_pod_is_not_run_or_written_again_after_an_event_or_a_restart(
    cluster: Cluster, tmp_path: Path, node_name: str
) -> None:
    runtime = CountingRuntime()
    name, later, last = (f"{node_name}-{n}" for n in ("done", "later", "last"))
    try:
        async with running_agent(cluster, tmp_path / "node", runtime,
                                 node_name=node_name) as agent:
            uid = (await cluster.create(manifest(name, node_name)))["metadata"]["uid"]
            pod = await ended(cluster, name)
            await eventually(lambda: uid in agent.ended and uid not in agent.workers)
            assert agent.layout.log_path("default", name, "work").exists()

            labelled = await cluster.patch(kinds.POD, name, {"metadata": {"labels": {"a": "b"}}},
                                           "default")
            await cluster.create(manifest(later, node_name))
            await ended(cluster, later)
            assert uid in agent.ended and uid not in agent.workers

        async with running_agent(cluster, tmp_path / "node", runtime,
                                 node_name=node_name) as restarted:
            await cluster.create(manifest(last, node_name))
            await ended(cluster, last)
            await eventually(lambda: uid in restarted.ended)
            again = await cluster.get(kinds.POD, name, "default")
            assert again["metadata"]["resourceVersion"] == labelled["metadata"]["resourceVersion"]
            assert again["status"] == pod["status"]
            assert runtime.starts[(uid, "prepare")] == runtime.starts[(uid, "work")] == 1

            await cluster.delete(kinds.POD, name, "default")
            await wait_for_pod_gone(cluster, name, within=30)
            await eventually(lambda: uid not in restarted.ended and not runtime.knows(uid))
            assert not restarted.layout.pod_logs_dir("default", name).exists()
            assert not restarted.layout.pod_dir(uid).exists()
    finally:
        for pod_name in (name, later, last):
            await _remove(cluster, pod_name)
        await _remove_node(cluster, node_name)


async def test_an_ended_pod_removed_at_once_is_cleaned_up_after(
    cluster: Cluster, tmp_path: Path, node_name: str
) -> None:
    runtime = CountingRuntime()
    name = f"{node_name}-gone"
    try:
        async with running_agent(cluster, tmp_path / "node", runtime,
                                 node_name=node_name) as agent:
            uid = (await cluster.create(manifest(name, node_name)))["metadata"]["uid"]
            await ended(cluster, name)
            await eventually(lambda: uid in agent.ended)
            logs = agent.layout.pod_logs_dir("default", name)
            assert logs.exists()

            await cluster.delete(kinds.POD, name, "default", grace_period_seconds=0)
            await eventually(lambda: uid not in agent.ended and uid not in agent.workers
                             and not runtime.knows(uid) and not logs.exists())
            assert not agent.layout.pod_dir(uid).exists()
            assert runtime.starts[(uid, "work")] == 1
    finally:
        await _remove(cluster, name)
        await _remove_node(cluster, node_name)


async def _remove(cluster: Cluster, name: str) -> None:
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.POD, name, "default", grace_period_seconds=0)


async def _remove_node(cluster: Cluster, name: str) -> None:
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NODE, name)


async def test_an_ended_pod_missing_from_a_new_list_is_cleaned_up_after(
    cluster: Cluster, tmp_path: Path, node_name: str
) -> None:
    runtime = CountingRuntime()
    expiring = ExpiringWatches(cluster)
    name = f"{node_name}-unseen"
    try:
        async with running_agent(expiring, tmp_path / "node", runtime,
                                 node_name=node_name) as agent:
            uid = (await cluster.create(manifest(name, node_name)))["metadata"]["uid"]
            await ended(cluster, name)
            await eventually(lambda: uid in agent.ended)
            logs = agent.layout.pod_logs_dir("default", name)

            expiring.expire = True
            await cluster.delete(kinds.POD, name, "default", grace_period_seconds=0)
            await eventually(lambda: uid not in agent.ended and uid not in agent.workers
                             and not runtime.knows(uid) and not logs.exists())
            assert not expiring.expire
            assert not agent.layout.pod_dir(uid).exists()
    finally:
        await _remove(cluster, name)
        await _remove_node(cluster, node_name)
