"""deploy/ on a real kube-apiserver: the manifests are accepted, and two engine replicas
running as the cyclone-engine ServiceAccount (so with exactly the RBAC of deploy/) share the
work through the Lease — the leader is SIGKILLed mid-run, the other takes over within its
lease duration, and every run finishes with one pod per stage."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from engine.harness import NAMESPACE, PVC, overall, shell_stage, workflow, workflow_run
from support.clusters import eventually
from support.control_plane import extra_plane, remote_cluster_on

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster
from cyclone.node.agent import NodeAgent
from cyclone.node.provisioner import LocalPathProvisioner
from cyclone.node.runtimes.fake import FakeRuntime

from .chart import DEPLOY, documents
from .kube_apply import Applier
from .replicas import TAKEOVER_BOUND, lease_holder, pods_per_stage, start_replica, stop_all

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


async def test_engine_replicas_with_deploy_rbac_fail_over_on_a_real_apiserver(tmp_path: Path):
    with extra_plane("cyclone-deploy") as plane:
        applier = Applier(plane)
        try:
            await install(applier)
            token = await eventually(
                lambda: applier.service_account_token("cyclone", "cyclone-engine"), timeout=30)
            engine_kubeconfig = applier.kubeconfig_for(token, tmp_path / "engine.kubeconfig")
        finally:
            await applier.close()
        async with remote_cluster_on(plane) as admin:
            await prepare_tenant(admin)
            node = "deploy-node"
            agent = NodeAgent(admin, node_name=node, data_dir=tmp_path / "node",
                              runtime=FakeRuntime(duration_seconds=0.5), heartbeat_seconds=2)
            provisioner = LocalPathProvisioner(admin, tmp_path / "node", node_name=node)
            where = ["--kubeconfig", str(engine_kubeconfig)]
            replicas = []
            async with asyncio.TaskGroup() as group:
                background = [group.create_task(agent.run()),
                              group.create_task(provisioner.run())]
                try:
                    await asyncio.wait_for(agent.registered.wait(), 30)
                    for name in ("engine-a", "engine-b"):
                        replicas.append(await start_replica(name, where, tmp_path,
                                                            config=ENGINE_CONFIG))
                    by_name = {r.identity: r for r in replicas}
                    leader = await eventually(lambda: lease_holder(admin), timeout=60)
                    for index in range(RUNS):
                        await admin.create(workflow_run(f"run-{index}", "chain"))

                    async def some_pod() -> list[dict]:
                        return (await admin.list(kinds.POD, NAMESPACE)).items

                    await eventually(some_pod, timeout=60)
                    by_name[leader].kill()
                    killed_at = time.monotonic()
                    await by_name[leader].process.wait()
                    successor = await eventually(lambda: other_holder(admin, leader),
                                                 timeout=TAKEOVER_BOUND + 10)
                    took_over_after = time.monotonic() - killed_at
                    runs = [await wait_phase(admin, f"run-{i}", within=90) for i in range(RUNS)]
                    pods = (await admin.list(kinds.POD, NAMESPACE)).items
                    logs = {r.identity: r.log(tail=None) for r in replicas}
                finally:
                    await stop_all(replicas)
                    for task in background:
                        task.cancel()
            with contextlib.suppress(NotFound):
                await admin.delete(kinds.NODE, node)

    assert successor != leader
    assert took_over_after <= TAKEOVER_BOUND, took_over_after
    assert [overall(run)["phase"] for run in runs] == ["Succeeded"] * RUNS, [
        run.get("status") for run in runs]
    expected = {(f"run-{r}", f"s{s}") for r in range(RUNS) for s in range(STAGES)}
    assert set(pods_per_stage(pods)) == expected
    assert set(pods_per_stage(pods).values()) == {1}
    assert f"{successor} leads cyclone/cyclone-engine" in logs[successor]
    for identity, log in logs.items():
        assert "engine ready" in log, (identity, log)
        assert "forbidden" not in log.lower(), (identity, log)
