"""The seed's "Running a Workflow Step by Step", driven through the REST API of `cyclone up`.

On the embedded default the cluster integration is the control cluster itself; on real
Kubernetes `cyclone up --kubeconfig` runs against one control plane and the integration
names a second, worker plane (its kubeconfig), where a node agent runs the pods. Each step
checks that the objects the seed names exist where the seed says they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.clusters import eventually
from support.seed_objects import seed_posts
from support.up import cyclone_up

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) not installed"),
]

TENANT = "devops"
META_NS = "cyclone-devops"
WORKER_NS = "cyclone-devops-worker"
TENANT_PVC = "cyclone-pvc-devops"
RUNS = "/projects/demo/workflows/ci/workflowruns"
STAGE_RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"},
                   "limits": {"cpu": "100m", "memory": "64Mi"}}


@dataclass
class Seed:
    http: httpx.AsyncClient
    control: Cluster
    worker: Cluster
    integration: dict
    execution_cluster: str
    node_dir: Path


@contextlib.asynccontextmanager
async def embedded_seed(tmp_path: Path, monkeypatch) -> AsyncIterator[Seed]:
    from cyclone.kube.embedded import EmbeddedCluster

    async with cyclone_up(tmp_path / "up", monkeypatch) as http:
        async with EmbeddedCluster(tmp_path / "up" / "cluster.db") as cluster:
            yield Seed(http, cluster, cluster, {
                "isControlCluster": True, "namespace": WORKER_NS,
            }, keys.CONTROL_CLUSTER_NAME, tmp_path / "up" / "node")


@contextlib.asynccontextmanager
async def kube_seed(tmp_path: Path, monkeypatch) -> AsyncIterator[Seed]:
    from support.control_plane import extra_plane, remote_cluster_on
    from support.kube_engine import install_crds

    from cyclone.node.agent import NodeAgent
    from cyclone.node.provisioner import LocalPathProvisioner
    from cyclone.node.runtimes.host import HostRuntime
    from cyclone.resolvers import resolver_image_overlays

    with extra_plane("cyclone-seed-control") as control_plane, \
            extra_plane("cyclone-seed-worker") as worker_plane:
        async with remote_cluster_on(control_plane) as control, \
                remote_cluster_on(worker_plane) as worker:
            await install_crds(control)
            node_dir = tmp_path / "worker-node"
            agent = NodeAgent(worker, node_name="worker-node", data_dir=node_dir,
                              runtime=HostRuntime(image_overlays=resolver_image_overlays()),
                              heartbeat_seconds=2, log_server_port=0,
                              log_client_ca=worker_plane.kubelet_client_ca)
            provisioner = LocalPathProvisioner(worker, node_dir, node_name="worker-node")
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(agent.run()), group.create_task(provisioner.run())]
                try:
                    await asyncio.wait_for(agent.registered.wait(), 30)
                    async with cyclone_up(tmp_path / "up", monkeypatch,
                                          control_plane.kubeconfig) as http:
                        yield Seed(http, control, worker, {
                            "clusterName": "worker", "namespace": WORKER_NS,
                            "credential": {"kubeConfig": worker_plane.kubeconfig.read_text()},
                            "pvc": "",
                        }, "worker", node_dir)
                finally:
                    for task in tasks:
                        task.cancel()


@pytest.fixture(params=["embedded", pytest.param("kube", marks=pytest.mark.k8s)])
async def seed(request, tmp_path, monkeypatch) -> AsyncIterator[Seed]:
    opened = embedded_seed if request.param == "embedded" else kube_seed
    async with opened(tmp_path, monkeypatch) as environment:
        yield environment


async def sse_lines(http: httpx.AsyncClient, path: str, wanted: str) -> list[str]:
    """Data lines of the SSE log stream, read until one contains `wanted`."""
    seen: list[str] = []
    async with http.stream("GET", path, headers={"X-Tenant": TENANT,
                                                 "Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                seen.append(line[5:].strip())
                if wanted in line:
                    return seen
    return seen


async def test_seed_steps_run_a_workflow_in_the_worker_namespace(seed: Seed):
    http, tenant = seed.http, {"X-Tenant": TENANT}

    # 1. A tenant: its metadata namespace in the control cluster, info in an annotation.
    response = await http.post("/tenants", json={
        "metadata": {"name": TENANT},
        "spec": {"persistentVolumeClaim": {"size": "1Gi"},
                 "resourceQuota": {"limits.cpu": "2", "limits.memory": "4Gi",
                                   "requests.cpu": "1", "requests.memory": "2Gi"}},
    })
    assert response.status_code == 201, response.text
    namespace = await seed.control.get(kinds.NAMESPACE, META_NS)
    assert keys.ANNOTATION_TENANT_INFO in namespace["metadata"]["annotations"]

    # 2. A cluster integration, kept as a Secret of the metadata namespace.
    response = await http.post("/integrations", headers=tenant, json={
        "metadata": {"name": "cluster"},
        "spec": {"type": "Cluster", "cluster": seed.integration}})
    assert response.status_code == 201, response.text
    assert "current-context" not in response.text
    secret = await seed.control.get(kinds.SECRET, "cluster", META_NS)
    assert secret["metadata"]["labels"][keys.LABEL_INTEGRATION_TYPE] == "Cluster"

    # 3. Open the cluster: quota, tenant PVC and watchdog in the worker's workload
    # namespace, an ExecutionCluster in the control cluster.
    response = await http.put("/integrations/cluster/opencluster", headers=tenant)
    assert response.status_code == 200, response.text
    await seed.worker.get(kinds.NAMESPACE, WORKER_NS)
    await seed.worker.get(kinds.RESOURCE_QUOTA, f"cyclone-quota-{TENANT}", WORKER_NS)
    await seed.worker.get(kinds.PERSISTENT_VOLUME_CLAIM, TENANT_PVC, WORKER_NS)
    watchdogs = (await seed.worker.list(
        kinds.POD, WORKER_NS, label_selector=f"{keys.LABEL_POD_KIND}=pvc-watcher")).items
    assert len(watchdogs) == 1
    await seed.control.get(kinds.EXECUTION_CLUSTER, seed.execution_cluster)

    async def usage_reported() -> bool:
        answer = await http.get("/storage/usages", headers=tenant)
        return answer.status_code == 200 and bool(answer.json())

    await eventually(usage_reported, timeout=60, interval=0.5)

    # 4. Resources, stages and a workflow.
    for route, body in seed_posts("busybox", STAGE_RESOURCES):
        response = await http.post(route, headers=tenant, json=body)
        assert response.status_code == 201, response.text
    for kind in (kinds.RESOURCE, kinds.STAGE, kinds.WORKFLOW):
        assert (await seed.control.list(kind, META_NS)).items

    # 5. A run: its pods in the worker namespace, its log readable while it runs.
    response = await http.post(RUNS, headers=tenant, json={"metadata": {"name": "r1"}})
    assert response.status_code == 201, response.text
    live = await asyncio.wait_for(
        sse_lines(http, f"{RUNS}/r1/logstream?stage=build", "building"), 60)
    assert "building" in live

    async def finished() -> dict | None:
        run = (await http.get(f"{RUNS}/r1", headers=tenant)).json()
        phase = ((run.get("status") or {}).get("overall") or {}).get("phase")
        return run if phase in ("Succeeded", "Failed", "Cancelled") else None

    run = await eventually(finished, timeout=120, interval=0.2)
    assert run["status"]["overall"]["phase"] == "Succeeded", run["status"]["stages"]
    assert run["status"]["stages"]["build"]["pod"]["namespace"] == WORKER_NS
    with pytest.raises(NotFound):
        await seed.worker.get(kinds.WORKFLOW_RUN, "r1", WORKER_NS)
    await seed.control.get(kinds.WORKFLOW_RUN, "r1", META_NS)

    async def log_of(stage: str, last_line: str) -> str:
        """The stored log of a stage once it holds `last_line` ("" before)."""
        answer = await http.get(f"{RUNS}/r1/logs", params={"stage": stage}, headers=tenant)
        return answer.text if answer.status_code == 200 and last_line in answer.text else ""

    artifacts = (await http.get(f"{RUNS}/r1/artifacts", headers=tenant)).json()
    assert [a["name"] for a in artifacts["items"]] == ["package.tar.gz"], artifacts
    assert "testing demo.tar" in await eventually(lambda: log_of("test", "passed"), timeout=30)
    assert "building" in await eventually(lambda: log_of("build", "built"), timeout=30)

    # 6. GC: a GC pod removes the run's data from the tenant PVC, then the run is cleaned.
    async def cleaned() -> dict | None:
        current = (await http.get(f"{RUNS}/r1", headers=tenant)).json()
        return current if (current.get("status") or {}).get("cleaned") else None

    await eventually(cleaned, timeout=120, interval=0.3)
    claim_dirs = [p for p in (seed.node_dir / "volumes" / "pvc").rglob(TENANT_PVC) if p.is_dir()]
    assert claim_dirs, "the tenant PVC was never mounted on the node"
    assert not any((d / "workflowruns" / "r1").exists() for d in claim_dirs)
    pods = (await seed.worker.list(kinds.POD, WORKER_NS,
                                   label_selector=f"{keys.LABEL_WORKFLOWRUN}=r1")).items
    assert pods == []
    assert await log_of("build", "built"), "the log outlives the pods and their GC"

    # Deleting the tenant removes what it had, in every cluster.
    assert (await http.delete(f"/tenants/{TENANT}")).status_code == 204

    async def gone(cluster: Cluster, kind: kinds.Kind, name: str) -> bool:
        try:
            obj = await cluster.get(kind, name)
        except NotFound:
            return True
        return bool(obj["metadata"].get("deletionTimestamp"))

    await eventually(lambda: gone(seed.worker, kinds.NAMESPACE, WORKER_NS), timeout=30)
    await eventually(lambda: gone(seed.control, kinds.NAMESPACE, META_NS), timeout=30)
    if seed.execution_cluster != keys.CONTROL_CLUSTER_NAME:
        await eventually(
            lambda: gone(seed.control, kinds.EXECUTION_CLUSTER, seed.execution_cluster),
            timeout=30)
