"""The fake runtime: pods complete without running anything, as chosen by annotations."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import FakeRuntime, NodeAgent
from node.helpers import (
    NODE,
    pod_manifest,
    running_agent,
    statuses,
    terminal,
    wait_for_pod,
    wait_for_pod_gone,
)

SPEC = {
    "initContainers": [{"name": "pull", "image": "resolver"}],
    "containers": [{"name": "work", "image": "busybox", "command": ["false"]}],
}


async def test_unbound_pod_is_bound_to_the_node_and_succeeds(
    cluster: EmbeddedCluster, fake_agent: NodeAgent
) -> None:
    await cluster.create(pod_manifest("unbound", SPEC, node=None))
    pod = await wait_for_pod(cluster, "unbound", terminal)

    assert pod["spec"]["nodeName"] == NODE
    assert pod["status"]["phase"] == "Succeeded"
    assert statuses(pod)["work"]["state"]["terminated"]["reason"] == "Completed"
    assert statuses(pod, "initContainerStatuses")["pull"]["imageID"] == "fake://resolver"
    log = b"".join([c async for c in cluster.pod_logs("unbound", "default", container="work")])
    assert log.decode().startswith("fake runtime: container work")


async def test_exit_code_annotation_fails_the_pod(
    cluster: EmbeddedCluster, fake_agent: NodeAgent
) -> None:
    annotations = {"fake.cyclone.dev/exit-code": "0", "fake.cyclone.dev/exit-code.work": "2"}
    await cluster.create(pod_manifest("fails", SPEC, node=None, annotations=annotations))
    pod = await wait_for_pod(cluster, "fails", terminal)

    assert pod["status"]["phase"] == "Failed"
    init = statuses(pod, "initContainerStatuses")["pull"]["state"]["terminated"]
    assert init["exitCode"] == 0
    work = statuses(pod)["work"]["state"]["terminated"]
    assert (work["exitCode"], work["reason"]) == (2, "Error")


async def test_long_fake_pod_runs_until_deleted(
    cluster: EmbeddedCluster, fake_agent: NodeAgent
) -> None:
    annotations = {"fake.cyclone.dev/duration-seconds": "1000"}
    await cluster.create(pod_manifest("long", SPEC, node=None, annotations=annotations))

    def init_running(pod: dict) -> bool:
        pull = statuses(pod, "initContainerStatuses").get("pull") or {}
        return "running" in pull.get("state", {})

    pod = await wait_for_pod(cluster, "long", init_running)
    assert pod["status"]["phase"] == "Pending"

    await cluster.delete(kinds.POD, "long", "default")
    await wait_for_pod_gone(cluster, "long")


async def test_deleted_node_is_registered_again_by_the_heartbeat(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    async with running_agent(cluster, tmp_path / "node", FakeRuntime(), heartbeat_seconds=0.05):
        node = await cluster.get(kinds.NODE, NODE)
        await cluster.delete(kinds.NODE, NODE)
        async with asyncio.timeout(10):
            async for event in cluster.watch(
                kinds.NODE, field_selector=f"metadata.name={NODE}",
                resource_version=node["metadata"]["resourceVersion"],
            ):
                if event.type == "ADDED":
                    break
        again = await cluster.get(kinds.NODE, NODE)
    ready = {c["type"]: c["status"] for c in again["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert again["metadata"]["uid"] != node["metadata"]["uid"]


async def test_node_lease_is_renewed_where_kube_node_lease_exists(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": "kube-node-lease"}})
    async with running_agent(cluster, tmp_path / "node", FakeRuntime(), heartbeat_seconds=0.05):
        async with asyncio.timeout(10):
            async for event in cluster.watch(kinds.LEASE, "kube-node-lease"):
                if event.object["metadata"]["name"] == NODE:
                    break
    lease = await cluster.get(kinds.LEASE, NODE, "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == NODE
    assert lease["spec"]["renewTime"].endswith("Z")
