"""deploy/ on a real kube-apiserver: the manifests are accepted, and two engine replicas
running as the cyclone-engine ServiceAccount (so with exactly the RBAC of deploy/) share the
work through the Lease — the leader is SIGKILLed mid-run, the other takes over within its
lease duration, and every run finishes with one pod per stage."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from engine.harness import NAMESPACE, PVC, overall, shell_stage, workflow, workflow_run
from support.clusters import eventually
from support.control_plane import extra_plane, remote_cluster_on
from support.kube_engine import running_node

from cyclone.devcluster import ControlPlane
from cyclone.devcluster.plane import free_port
from cyclone.kube import kinds
from cyclone.kube.remote import RemoteCluster
from cyclone.node.runtimes.fake import FakeRuntime

from .chart import DEPLOY, documents
from .kube_apply import Applier
from .replicas import (
    REPO,
    TIMINGS,
    engine_lease,
    lease_holder,
    lease_moment,
    pods_per_stage,
    start_replica,
    stop_all,
)

pytestmark = pytest.mark.k8s

RUNS = 3
STAGES = 3
ENGINE_CONFIG = {"gc_enabled": False, "system_namespace": "cyclone"}


async def install(applier: Applier) -> None:
    """CRDs, the namespace and RBAC for real; the workloads as a server-side dry run."""
    crds = documents(DEPLOY / "crds" / "cyclone-crds.yaml")
    for crd in crds:
        await applier.apply(crd)
    for path in (DEPLOY / "namespace.yaml", DEPLOY / "rbac.yaml"):
        for doc in documents(path):
            await applier.apply(doc)
    for path in (DEPLOY / "engine.yaml", DEPLOY / "server.yaml"):
        for doc in documents(path):
            if doc["kind"] == "PodDisruptionBudget":
                doc["apiVersion"] = "policy/v1beta1"  # policy/v1 is served from 1.21 on
            await applier.apply(doc, dry_run=True)

    async def established() -> bool:
        for crd in crds:
            got = (await applier.http.get(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                f"{crd['metadata']['name']}")).json()
            conditions = (got.get("status") or {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True"
                       for c in conditions):
                return False
        return True

    await eventually(established, timeout=30)


async def prepare_tenant(admin: RemoteCluster) -> None:
    await admin.create({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": NAMESPACE}})
    await eventually(lambda: admin.get(kinds.SERVICE_ACCOUNT, "default", NAMESPACE), timeout=30)
    await admin.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": PVC, "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    })
    for obj in (
        *(shell_stage(f"s{i}", "true") for i in range(STAGES)),
        workflow("chain", [{"name": f"s{i}", "depends": [f"s{i - 1}"] if i else []}
                           for i in range(STAGES)]),
    ):
        await admin.create(obj)


async def wait_phase(admin: RemoteCluster, name: str, within: float) -> dict:
    async def finished() -> dict | None:
        run = await admin.get(kinds.WORKFLOW_RUN, name, NAMESPACE)
        return run if overall(run).get("phase") in ("Succeeded", "Failed", "Cancelled") else None

    return await eventually(finished, timeout=within)


async def other_holder(admin: RemoteCluster, leader: str) -> str | None:
    holder = await lease_holder(admin)
    return holder if holder not in (None, leader) else None


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    """A plane of this module's own, so what deploy/ installs touches no other test."""
    with extra_plane("cyclone-deploy") as started:
        yield started


async def installed(plane: ControlPlane, scratch: Path) -> dict[str, Path]:
    """Install deploy/ and return a kubeconfig per component ServiceAccount."""
    applier = Applier(plane)
    try:
        await install(applier)
        kubeconfigs = {}
        for component in ("engine", "server"):
            token = await eventually(
                lambda c=component: applier.service_account_token("cyclone", f"cyclone-{c}"),
                timeout=30)
            kubeconfigs[component] = applier.kubeconfig_for(
                token, scratch / f"{component}.kubeconfig")
        return kubeconfigs
    finally:
        await applier.close()


async def test_engine_replicas_with_deploy_rbac_fail_over_on_a_real_apiserver(
    plane: ControlPlane, tmp_path: Path
):
    where = ["--kubeconfig", str((await installed(plane, tmp_path))["engine"])]
    replicas = []
    async with remote_cluster_on(plane) as admin, \
            running_node(admin, "deploy-node", tmp_path / "node",
                         FakeRuntime(duration_seconds=0.5)):
        await prepare_tenant(admin)
        try:
            for name in ("engine-a", "engine-b"):
                replicas.append(await start_replica(name, where, tmp_path, config=ENGINE_CONFIG))
            by_name = {r.identity: r for r in replicas}
            leader = await eventually(lambda: lease_holder(admin), timeout=60)
            for index in range(RUNS):
                await admin.create(workflow_run(f"run-{index}", "chain"))

            async def some_pod() -> list[dict]:
                return (await admin.list(kinds.POD, NAMESPACE)).items

            await eventually(some_pod, timeout=60)
            by_name[leader].kill()
            await by_name[leader].process.wait()
            last_held = await engine_lease(admin)
            successor = await eventually(lambda: other_holder(admin, leader), timeout=60)
            taken = await engine_lease(admin)
            runs = [await wait_phase(admin, f"run-{i}", within=90) for i in range(RUNS)]
            pods = (await admin.list(kinds.POD, NAMESPACE)).items
            logs = {r.identity: r.log(tail=None) for r in replicas}
        finally:
            await stop_all(replicas)

    assert successor != leader
    assert last_held["holderIdentity"] == leader, last_held
    expired_after = lease_moment(taken["acquireTime"]) - lease_moment(last_held["renewTime"])
    assert expired_after.total_seconds() >= TIMINGS.lease_duration, (last_held, taken)
    assert [overall(run)["phase"] for run in runs] == ["Succeeded"] * RUNS, [
        run.get("status") for run in runs]
    expected = {(f"run-{r}", f"s{s}") for r in range(RUNS) for s in range(STAGES)}
    assert set(pods_per_stage(pods)) == expected
    assert set(pods_per_stage(pods).values()) == {1}
    assert f"{successor} leads cyclone/cyclone-engine" in logs[successor]
    for identity, log in logs.items():
        assert "engine ready" in log, (identity, log)
        assert "forbidden" not in log.lower(), (identity, log)


async def test_server_and_engine_with_deploy_rbac_run_a_tenant_workflow(
    plane: ControlPlane, tmp_path: Path
):
    kubeconfigs = await installed(plane, tmp_path)
    port = free_port()
    server_log = tmp_path / "server.log"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cyclone.cli.main", "server",
        "--kubeconfig", str(kubeconfigs["server"]), "--data-dir", str(tmp_path / "data"),
        "--host", "127.0.0.1", "--port", str(port), "--admin-token-secret", "cyclone-admin-token",
        "--server-url", f"http://127.0.0.1:{port}", "--lease-namespace", "cyclone",
        "--engine-key-namespace", ENGINE_CONFIG["system_namespace"],
        "--identity", "server-1", "--no-open-control-cluster",
        stdout=asyncio.subprocess.DEVNULL, stderr=server_log.open("wb"),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    where = ["--kubeconfig", str(kubeconfigs["engine"])]
    engine = None
    try:
        async with remote_cluster_on(plane) as admin, \
                running_node(admin, "deploy-node-2", tmp_path / "node",
                             FakeRuntime(duration_seconds=0.5)):
            token_secret = await eventually(
                lambda: admin.get(kinds.SECRET, "cyclone-admin-token", "cyclone"), timeout=60)
            token = base64.b64decode(token_secret["data"]["token"]).decode()
            async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}/apis/v1alpha1",
                    headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                engine = await start_replica("engine-c", where, tmp_path, config=ENGINE_CONFIG)

                async def healthy() -> bool:
                    return (await http.get("/tenants")).status_code == 200

                await eventually(healthy, timeout=60)
                steps = await drive_tenant_workflow(http)
                assert all(code < 300 for code in steps.values()), (steps, server_log.read_text())
                run = await eventually(lambda: finished_run(http), timeout=90)
                server_holder = await eventually(
                    lambda: lease_holder(admin, "cyclone-server"), timeout=30)
    finally:
        for process in (server, engine and engine.process):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)

    assert run["status"]["overall"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["stages"]["build"]["pod"]["namespace"] == "cyclone-devops-worker"
    assert server_holder == "server-1"
    for log in (server_log.read_text(), engine.log(tail=None)):
        assert "forbidden" not in log.lower(), log[-4000:]
        if token in log:
            pytest.fail("the admin token appears in a component's log")


RUN_PATH = "/projects/demo/workflows/ci/workflowruns"
STAGE_SPEC = {"pod": {"spec": {"containers": [{
    "image": "busybox", "command": ["true"],
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                  "limits": {"cpu": "100m", "memory": "64Mi"}}}]}}}


async def drive_tenant_workflow(http: httpx.AsyncClient) -> dict[str, int]:
    """Through the API: a tenant, an opened cluster, an SCM integration, a project using
    it, a Git resource whose URL and token the engine binds from it (a Secret of the
    pod's, which the engine's role must be allowed to create), stages, a workflow, a run."""
    tenant = {"X-Tenant": "devops"}
    steps = {}
    steps["tenant"] = (await http.post("/tenants", json={
        "metadata": {"name": "devops"},
        "spec": {"persistentVolumeClaim": {"size": "1Gi"},
                 "resourceQuota": {"limits.cpu": "4", "limits.memory": "8Gi",
                                   "requests.cpu": "2", "requests.memory": "4Gi"}},
    })).status_code
    steps["integration"] = (await http.post("/integrations", headers=tenant, json={
        "metadata": {"name": "local"}, "spec": {"type": "Cluster", "cluster": {
            "isControlCluster": True, "namespace": "cyclone-devops-worker"}}})).status_code
    steps["open"] = (await http.put("/integrations/local/opencluster",
                                    headers=tenant)).status_code
    steps["scm"] = (await http.post("/integrations", headers=tenant, json={
        "metadata": {"name": "scm"}, "spec": {"type": "SCM", "scm": {
            "type": "GitHub", "server": "https://git.example.com",
            "token": "bound-token"}}})).status_code
    steps["project"] = (await http.post("/projects", headers=tenant, json={
        "metadata": {"name": "demo"},
        "spec": {"integrations": [{"type": "SCM", "name": "scm"}]}})).status_code
    steps["resource"] = (await http.post("/projects/demo/resources", headers=tenant, json={
        "metadata": {"name": "src"}, "spec": {"type": "Git", "parameters": [
            {"name": "SCM_REPO", "value": "org/app"},
            {"name": "SCM_REVISION", "value": "main"}]}})).status_code
    for name in ("build", "test"):
        spec = dict(STAGE_SPEC["pod"])
        if name == "build":
            spec["inputs"] = {"resources": [{"name": "src", "path": "/workspace/src"}]}
        steps[name] = (await http.post("/projects/demo/stages", headers=tenant, json={
            "metadata": {"name": name}, "spec": {"pod": spec}})).status_code
    steps["workflow"] = (await http.post("/projects/demo/workflows", headers=tenant, json={
        "metadata": {"name": "ci"}, "spec": {"stages": [
            {"name": "build"}, {"name": "test", "depends": ["build"]}]}})).status_code
    steps["run"] = (await http.post(RUN_PATH, headers=tenant,
                                    json={"metadata": {"name": "r1"}})).status_code
    return steps


async def finished_run(http: httpx.AsyncClient) -> dict | None:
    run = (await http.get(f"{RUN_PATH}/r1", headers={"X-Tenant": "devops"})).json()
    phase = ((run.get("status") or {}).get("overall") or {}).get("phase")
    return run if phase in ("Succeeded", "Failed", "Cancelled") else None
