"""A running Cyclone with two tenants, `a` and `b`, on the embedded cluster and on a real
kube-apiserver: the ground for attacker-side tests of the tenant boundary.

Each tenant holds only its own token and has opened the control cluster as its execution
cluster. `stack.cluster` is the control cluster with full rights: what a kubectl user's
requests reach when the test plays one.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.sandboxes import kill_containers_under

from cyclone.kube.protocol import Cluster

BACKENDS = ["embedded", pytest.param("kube", marks=pytest.mark.k8s)]
STAGE_RESOURCES = {"requests": {"cpu": "50m", "memory": "32Mi"},
                   "limits": {"cpu": "100m", "memory": "64Mi"}}


@dataclass
class TenantHandle:
    name: str
    namespace: str
    http: httpx.AsyncClient


@dataclass
class Stack:
    backend: str
    base_url: str
    admin: httpx.AsyncClient
    a: TenantHandle
    b: TenantHandle
    cluster: Cluster
    data_dir: Path


@pytest.fixture(scope="session")
def tenancy_plane() -> Iterator[object]:
    """One real control plane for the kube-backed stacks of the session (of each xdist
    worker): every stack has tenants and a node of its own names, so stacks share it as
    the tests of one module always have, without a plane start per module."""
    from support.control_plane import extra_plane

    with extra_plane("cyclone-tenancy") as plane:
        yield plane


async def _tenant(stack_admin: httpx.AsyncClient, base_url: str, prefix: str,
                  stack: contextlib.AsyncExitStack) -> TenantHandle:
    name = f"{prefix}{secrets.token_hex(3)}"
    response = await stack_admin.post("/tenants", json={
        "metadata": {"name": name},
        "spec": {"persistentVolumeClaim": {"size": "1Gi"},
                 "resourceQuota": {"limits.cpu": "2", "limits.memory": "2Gi",
                                   "requests.cpu": "1", "requests.memory": "1Gi"}},
    })
    assert response.status_code == 201, response.text
    response = await stack_admin.post(f"/tenants/{name}/tokens", json={"description": "test"})
    assert response.status_code == 201, response.text
    http = await stack.enter_async_context(httpx.AsyncClient(
        base_url=f"{base_url}/apis/v1alpha1", timeout=30,
        headers={"Authorization": f"Bearer {response.json()['token']}"}))
    response = await http.post("/integrations", json={
        "metadata": {"name": "cluster"},
        "spec": {"type": "Cluster", "cluster": {"isControlCluster": True}}})
    assert response.status_code == 201, response.text
    response = await http.put("/integrations/cluster/opencluster")
    assert response.status_code == 200, response.text
    return TenantHandle(name, f"cyclone-{name}", http)


@contextlib.asynccontextmanager
async def _running_stack(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         plane: object | None) -> AsyncIterator[Stack]:
    from support.up import cyclone_up

    data_dir = tmp_path / "up"
    async with contextlib.AsyncExitStack() as exits:
        if backend == "embedded":
            from cyclone.kube.embedded import EmbeddedCluster

            admin = await exits.enter_async_context(cyclone_up(data_dir, monkeypatch))
            cluster: Cluster = await exits.enter_async_context(
                EmbeddedCluster(data_dir / "cluster.db"))
        else:
            from support.control_plane import remote_cluster_on
            from support.kube_engine import install_crds, running_node

            from cyclone.node.runtimes.host import HostRuntime
            from cyclone.resolvers import resolver_image_overlays

            cluster = await exits.enter_async_context(remote_cluster_on(plane))
            await install_crds(cluster)
            node = f"tenancy-{secrets.token_hex(3)}"
            await exits.enter_async_context(running_node(
                cluster, node, tmp_path / "node",
                HostRuntime(image_overlays=resolver_image_overlays()), log_server_port=0,
                log_client_ca=plane.kubelet_client_ca))
            admin = await exits.enter_async_context(
                cyclone_up(data_dir, monkeypatch, plane.kubeconfig))
        base_url = str(admin.base_url).removesuffix("/apis/v1alpha1/").removesuffix(
            "/apis/v1alpha1")
        a = await _tenant(admin, base_url, "ta", exits)
        b = await _tenant(admin, base_url, "tb", exits)
        yield Stack(backend, base_url, admin, a, b, cluster, data_dir)


@pytest.fixture(params=BACKENDS)
async def stack(request, tmp_path, monkeypatch) -> AsyncIterator[Stack]:
    plane = request.getfixturevalue("tenancy_plane") if request.param == "kube" else None
    try:
        async with _running_stack(request.param, tmp_path, monkeypatch, plane) as running:
            yield running
    finally:
        kill_containers_under(tmp_path)
