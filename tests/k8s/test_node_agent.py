"""A complete test cluster: the real control plane schedules a pod onto the node agent,
the provisioner binds its claim, the agent runs it, and its log is read through the apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.clusters import eventually

from cyclone.devcluster import ControlPlane
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster
from cyclone.node.agent import NodeAgent
from cyclone.node.layout import NodeLayout
from cyclone.node.provisioner import LocalPathProvisioner
from cyclone.node.runtimes.host import HostRuntime

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) not installed"),
]


@dataclass
class RunningNode:
    name: str
    layout: NodeLayout


@pytest.fixture
async def namespace(remote_cluster: RemoteCluster) -> AsyncIterator[str]:
    name = f"agent-{secrets.token_hex(4)}"
    await remote_cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name}})
    await eventually(lambda: remote_cluster.get(kinds.SERVICE_ACCOUNT, "default", name),
                     timeout=30)
    yield name
    with contextlib.suppress(NotFound):
        await remote_cluster.delete(kinds.NAMESPACE, name)


@pytest.fixture
async def node(remote_cluster: RemoteCluster, control_plane: ControlPlane,
               tmp_path: Path) -> AsyncIterator[RunningNode]:
    """A node agent (host runtime, log server) and the provisioner for its data directory."""
    name = f"agent-{secrets.token_hex(3)}"
    data_dir = tmp_path / "node"
    agent = NodeAgent(remote_cluster, node_name=name, data_dir=data_dir,
                      runtime=HostRuntime(), heartbeat_seconds=2, log_server_port=0,
                      log_client_ca=control_plane.kubelet_client_ca)
    provisioner = LocalPathProvisioner(remote_cluster, data_dir, node_name=name)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(agent.run()), group.create_task(provisioner.run())]
            await asyncio.wait_for(agent.registered.wait(), 30)
            yield RunningNode(name, NodeLayout(data_dir))
            for task in tasks:
                task.cancel()
    finally:
        with contextlib.suppress(NotFound):
            await remote_cluster.delete(kinds.NODE, name)


def pod_with_claim(node_name: str, script: str, *, automount_token: bool = True) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "build"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": automount_token,
            "nodeSelector": {"kubernetes.io/hostname": node_name},
            "containers": [{
                "name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "data", "mountPath": "/workspace"}],
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }


async def create_claim_and_pod(cluster: RemoteCluster, namespace: str, pod: dict) -> None:
    await cluster.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }, namespace=namespace)
    await cluster.create(pod, namespace=namespace)


async def finished_pod(cluster: RemoteCluster, namespace: str) -> dict:
    async def probe() -> dict | None:
        pod = await cluster.get(kinds.POD, "build", namespace)
        done = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        return pod if done else None

    return await eventually(probe, timeout=90)


@pytest.mark.parametrize("automount_token", [False, True], ids=["no-token", "token"])
async def test_scheduled_pod_with_a_claim_runs_on_the_agent_and_its_log_is_served(
    remote_cluster: RemoteCluster, namespace: str, node: RunningNode, automount_token: bool,
) -> None:
    script = "echo line-1; echo hello > /workspace/out; echo line-2"
    await create_claim_and_pod(remote_cluster, namespace, pod_with_claim(
        node.name, script, automount_token=automount_token))
    pod = await finished_pod(remote_cluster, namespace)
    log = b"".join([chunk async for chunk in remote_cluster.pod_logs("build", namespace)])
    tail = b"".join([chunk async for chunk in remote_cluster.pod_logs(
        "build", namespace, container="main", since_bytes=len(b"line-1\n"))])

    assert pod["status"]["phase"] == "Succeeded", (pod["status"], log)
    assert pod["spec"]["nodeName"] == node.name
    assert log == b"line-1\nline-2\n"
    assert tail == b"line-2\n"
    assert (node.layout.pvc_dir(namespace, "data") / "out").read_text() == "hello\n"


async def test_followed_log_streams_while_the_container_runs(
    remote_cluster: RemoteCluster, namespace: str, node: RunningNode,
) -> None:
    script = ("echo first; while [ ! -f /workspace/go ]; do sleep 0.1; done; echo second")
    await create_claim_and_pod(remote_cluster, namespace, pod_with_claim(node.name, script))

    async def running() -> bool:
        pod = await remote_cluster.get(kinds.POD, "build", namespace)
        return (pod.get("status") or {}).get("phase") == "Running"

    await eventually(running, timeout=90)
    received = b""
    async for chunk in remote_cluster.pod_logs("build", namespace, follow=True):
        received += chunk
        if received == b"first\n":
            (node.layout.pvc_dir(namespace, "data") / "go").touch()
    assert received == b"first\nsecond\n"
    assert (await finished_pod(remote_cluster, namespace))["status"]["phase"] == "Succeeded"
