"""`cyclone up --kubeconfig --node-agent`: its node agent serves pod logs to the API server
only when given `--log-client-ca-file`, and then to nobody but the API server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from support.clusters import eventually
from support.control_plane import extra_plane, remote_cluster_on
from support.kube_engine import install_crds
from support.sandboxes import kill_containers_under

from cyclone.devcluster import ControlPlane
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster
from cyclone.up import UpOptions, up

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap"),
]
NODE = socket.gethostname().lower() or "cyclone-node"


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with extra_plane("cyclone-up-logs") as started:
        yield started


@contextlib.asynccontextmanager
async def running_up(plane: ControlPlane, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                     client_ca: Path | None) -> AsyncIterator[RemoteCluster]:
    monkeypatch.setenv("CYCLONE_CONFIG", str(data_dir / "cli-config.yaml"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = UpOptions(data_dir=str(data_dir), port=port, runtime="host",
                        kubeconfig=str(plane.kubeconfig), node_agent=True,
                        log_client_ca_file=str(client_ca) if client_ca else None)
    async with remote_cluster_on(plane) as cluster:
        await install_crds(cluster)
        with contextlib.suppress(NotFound):
            await cluster.delete(kinds.NODE, NODE)
        task = asyncio.create_task(up(options))
        try:
            async def registered() -> bool:
                if task.done():
                    task.result()
                with contextlib.suppress(NotFound):
                    node = await cluster.get(kinds.NODE, NODE)
                    return "daemonEndpoints" in (node.get("status") or {})
                return False

            await eventually(registered, timeout=60, interval=0.2)
            yield cluster
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            kill_containers_under(data_dir)
            with contextlib.suppress(NotFound):
                await cluster.delete(kinds.NODE, NODE)


async def log_port(cluster: RemoteCluster) -> int:
    node = await cluster.get(kinds.NODE, NODE)
    return int(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])


async def test_without_a_client_ca_the_node_agent_serves_no_logs(
    plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_up(plane, tmp_path / "up", monkeypatch, None) as cluster:
        assert await log_port(cluster) == 0
    assert "no --log-client-ca-file" in caplog.text


async def test_with_a_client_ca_the_api_server_reads_logs_and_nobody_else_does(
    plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"talker-{secrets.token_hex(3)}"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"restartPolicy": "Never", "nodeSelector": {"kubernetes.io/hostname": NODE},
                    "containers": [{"name": "main", "image": "busybox",
                                    "command": ["sh", "-c", "echo raw secret"]}]}}
    async with running_up(plane, tmp_path / "up", monkeypatch,
                          plane.kubelet_client_ca) as cluster:
        port = await log_port(cluster)
        assert port > 0
        await cluster.create(pod)
        try:
            async def succeeded() -> bool:
                found = await cluster.get(kinds.POD, name, "default")
                return (found.get("status") or {}).get("phase") == "Succeeded"

            await eventually(succeeded, timeout=60, interval=0.3)
            log = b"".join([c async for c in cluster.pod_logs(name, "default")])
            assert log == b"raw secret\n"
            url = f"https://127.0.0.1:{port}/containerLogs/default/{name}/main"
            async with httpx.AsyncClient(verify=False, timeout=10) as stranger:
                with pytest.raises(httpx.TransportError):
                    await stranger.get(url)
        finally:
            with contextlib.suppress(NotFound):
                await cluster.delete(kinds.POD, name, "default", grace_period_seconds=0)
