"""The node agent as the only node of a real kube-apiserver, scheduler and controllers."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import httpx
import pytest
from support.control_plane import control_plane, remote_cluster_on

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.node import HostRuntime
from node.helpers import running_agent, statuses, terminal, wait_for_pod, wait_for_pod_gone

__all__ = ["control_plane"]

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap"),
]


async def test_scheduled_pod_runs_and_its_logs_are_served_through_the_api_server_only(
    control_plane: object, tmp_path: Path
) -> None:
    node_name = f"agent-{secrets.token_hex(3)}"
    pod_name = f"hello-{node_name}"
    taint = {"key": "cyclone.dev/node-test", "value": node_name, "effect": "NoSchedule"}
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": node_name},
            "tolerations": [{"key": "cyclone.dev/node-test", "operator": "Equal",
                             "value": node_name, "effect": "NoSchedule"}],
            "initContainers": [{"name": "init", "image": "busybox",
                                "command": ["sh", "-c", "echo init"]}],
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c",
                            "echo hello from $(hostname); printf done > /dev/termination-log"]}],
        },
    }
    async with remote_cluster_on(control_plane) as cluster:  # type: ignore[arg-type]
        try:
            async with running_agent(
                cluster, tmp_path / "node", HostRuntime(), node_name=node_name, taints=[taint],
                log_server_port=0, log_client_ca=control_plane.kubelet_client_ca,
            ):
                node = await cluster.get(kinds.NODE, node_name)
                ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
                assert ready["Ready"] == "True"

                await cluster.create(pod)
                done = await wait_for_pod(cluster, pod_name, terminal, within=60)
                assert done["spec"]["nodeName"] == node_name
                logs = sorted(p.read_text() for p in (tmp_path / "node" / "logs").rglob("*.log"))
                assert done["status"]["phase"] == "Succeeded", logs
                main = statuses(done)["main"]["state"]["terminated"]
                assert (main["exitCode"], main["message"]) == (0, "done")
                chunks = [c async for c in cluster.pod_logs(pod_name, "default",
                                                            container="main")]
                assert b"".join(chunks).startswith(b"hello from ")
                port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
                direct = f"https://127.0.0.1:{port}/containerLogs/default/{pod_name}/main"
                async with httpx.AsyncClient(verify=False, timeout=10) as stranger:
                    with pytest.raises(httpx.TransportError):
                        await stranger.get(direct)

                await cluster.delete(kinds.POD, pod_name, "default")
                await wait_for_pod_gone(cluster, pod_name, within=30)
        finally:
            with contextlib.suppress(NotFound):
                await cluster.delete(kinds.POD, pod_name, "default", grace_period_seconds=0)
            with contextlib.suppress(NotFound):
                await cluster.delete(kinds.NODE, node_name)
