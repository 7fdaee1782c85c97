"""Helpers of the node agent tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster
from cyclone.node import NodeAgent
from cyclone.node.runtimes.base import ContainerLaunch, Runtime

NODE = "node-a"


@contextlib.asynccontextmanager
async def running_agent(
    cluster: Cluster, data_dir: Path, runtime: Runtime, **options: object
) -> AsyncIterator[NodeAgent]:
    options.setdefault("node_name", NODE)
    agent = NodeAgent(cluster, data_dir=data_dir, runtime=runtime, **options)  # type: ignore[arg-type]
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.registered.wait(), 10)
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for_pod(
    cluster: Cluster,
    name: str,
    predicate: Callable[[dict], bool],
    namespace: str = "default",
    within: float = 20,
) -> dict:
    """The pod once `predicate` holds, following its watch events."""

    async def follow() -> dict:
        pod = await cluster.get(kinds.POD, name, namespace)
        if predicate(pod):
            return pod
        version = pod["metadata"]["resourceVersion"]
        while True:
            async for event in cluster.watch(
                kinds.POD, namespace, field_selector=f"metadata.name={name}",
                resource_version=version,
            ):
                version = event.object["metadata"]["resourceVersion"]
                if event.type != "DELETED" and predicate(event.object):
                    return event.object

    return await asyncio.wait_for(follow(), within)


async def wait_for_pod_gone(
    cluster: Cluster, name: str, namespace: str = "default", within: float = 20
) -> None:
    async def follow() -> None:
        try:
            pod = await cluster.get(kinds.POD, name, namespace)
        except Exception:
            return
        version = pod["metadata"]["resourceVersion"]
        async for event in cluster.watch(
            kinds.POD, namespace, field_selector=f"metadata.name={name}",
            resource_version=version,
        ):
            if event.type == "DELETED":
                return

    await asyncio.wait_for(follow(), within)


def terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_manifest(name: str, spec: dict, *, node: str | None = NODE, **metadata: object) -> dict:
    spec = {"restartPolicy": "Never", **spec}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", **metadata},
        "spec": spec,
    }


def statuses(pod: dict, key: str = "containerStatuses") -> dict[str, dict]:
    return {c["name"]: c for c in pod["status"].get(key) or []}


async def until(predicate: Callable[[], bool], within: float = 20) -> None:
    """Poll a file-system condition (no event tells when a detached process writes a file)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def signal_volume(tmp_path: Path) -> tuple[Path, dict, dict]:
    """A host directory a sandboxed container can write to (at `/signal`) and the test read."""
    shared = tmp_path / "signal"
    shared.mkdir()
    shared.chmod(0o777)
    volume = {"name": "signal", "hostPath": {"path": str(shared)}}
    return shared, volume, {"name": "signal", "mountPath": "/signal"}


def container_launch(tmp_path: Path, **fields: object) -> ContainerLaunch:
    """A runtime's launch of one container, its files under `tmp_path`; `fields` override."""
    values: dict = {
        "pod_uid": "u", "pod_name": "p", "namespace": "ns", "name": "c", "image": "img:1",
        "command": [], "args": [], "env": {}, "working_dir": None, "binds": [],
        "state_dir": tmp_path / "state", "log_path": tmp_path / "c.log",
    }
    values.update(fields)
    return ContainerLaunch(**values)
