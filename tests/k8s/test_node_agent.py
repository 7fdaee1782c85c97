"""A complete test cluster: the real control plane schedules a pod onto the node agent,
the provisioner binds its claim, the agent runs it, and its log is read through the apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import eventually

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


def stage_like_pod(node_name: str, automount_token: bool) -> dict:
    script = "echo line-1; echo hello > /workspace/out; echo line-2"
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


@pytest.mark.parametrize("automount_token", [False, True], ids=["no-token", "token"])
async def test_scheduled_pod_with_a_claim_runs_on_the_agent_and_its_log_is_served(
    remote_cluster: RemoteCluster, namespace: str, tmp_path: Path, automount_token: bool,
) -> None:
    node_name = f"agent-{secrets.token_hex(3)}"
    data_dir = tmp_path / "node"
    agent = NodeAgent(remote_cluster, node_name=node_name, data_dir=data_dir,
                      runtime=HostRuntime(), heartbeat_seconds=2, log_server_port=0)
    provisioner = LocalPathProvisioner(remote_cluster, data_dir, node_name=node_name)

    async def phase() -> str:
        pod = await remote_cluster.get(kinds.POD, "build", namespace)
        return (pod.get("status") or {}).get("phase", "")

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(agent.run()), group.create_task(provisioner.run())]
            await asyncio.wait_for(agent.registered.wait(), 30)
            await remote_cluster.create({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}},
            }, namespace=namespace)
            await remote_cluster.create(
                stage_like_pod(node_name, automount_token), namespace=namespace
            )

            async def finished() -> bool:
                return await phase() in ("Succeeded", "Failed")

            await eventually(finished, timeout=90)
            pod = await remote_cluster.get(kinds.POD, "build", namespace)
            log = b"".join([
                chunk async for chunk in remote_cluster.pod_logs("build", namespace)
            ])
            followed = b"".join([
                chunk async for chunk in remote_cluster.pod_logs(
                    "build", namespace, container="main", follow=True)
            ])
            for task in tasks:
                task.cancel()
    finally:
        with contextlib.suppress(NotFound):
            await remote_cluster.delete(kinds.NODE, node_name)

    assert pod["status"]["phase"] == "Succeeded", (pod["status"], log)
    assert pod["spec"]["nodeName"] == node_name
    assert log == b"line-1\nline-2\n"
    assert followed == log
    out = NodeLayout(data_dir).pvc_dir(namespace, "data") / "out"
    assert out.read_text() == "hello\n"
