"""The fake runtime: pods complete without running anything, as chosen by annotations."""

from __future__ import annotations

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import NodeAgent
from node.helpers import NODE, pod_manifest, statuses, terminal, wait_for_pod, wait_for_pod_gone

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
