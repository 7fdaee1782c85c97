"""Two real control planes: the WorkflowRuns live in the control plane, a run aimed at the
worker cluster (an ExecutionCluster with the worker's kubeconfig) gets its pods there, and
an ExecutionCluster nobody answers for fails only the runs aimed at it."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import yaml
from engine.harness import NAMESPACE, PVC, overall, shell_stage, workflow, workflow_run
from support.clusters import eventually
from support.control_plane import extra_plane, remote_cluster_on
from support.kube_engine import engine_test_cluster, running_node

from cyclone.api import keys
from cyclone.devcluster.plane import free_port
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.tenancy import record_patch
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster
from cyclone.node.runtimes.host import HostRuntime

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.timeout(240),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) not installed"),
]

WORKER_NAMESPACE = "cyclone-default-worker"


async def prepare_worker(worker: Cluster) -> None:
    await worker.create({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": WORKER_NAMESPACE}})
    await eventually(lambda: worker.get(kinds.SERVICE_ACCOUNT, "default", WORKER_NAMESPACE),
                     timeout=30)
    await worker.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": PVC, "namespace": WORKER_NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    })


def execution_cluster(name: str, credential: dict) -> dict:
    """An ExecutionCluster the default tenant opened, with its workload namespace there."""
    opened = record_patch(None, keys.DEFAULT_TENANT, "worker", (WORKER_NAMESPACE, PVC))
    return {"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
            "metadata": {"name": name, **opened["metadata"]}, "spec": {"credential": credential}}


def aimed_at(cluster: str, name: str) -> dict:
    return workflow_run(name, "wf", executionContext={"cluster": cluster,
                                                      "namespace": WORKER_NAMESPACE})


async def finished(control: Cluster, name: str) -> dict:
    async def probe() -> dict | None:
        run = await control.get(kinds.WORKFLOW_RUN, name, NAMESPACE)
        return run if overall(run).get("phase") in ("Succeeded", "Failed", "Cancelled") else None

    return await eventually(probe, timeout=120, interval=0.2)


async def test_runs_reach_their_execution_clusters_and_a_dead_one_fails_alone(tmp_path):
    with extra_plane("cyclone-worker") as worker_plane:
        async with (
            engine_test_cluster(NAMESPACE, PVC) as control,
            remote_cluster_on(worker_plane) as worker,
        ):
            await prepare_worker(worker)
            engine = Engine(control, EngineConfig(gc_enabled=False, watch_pod_events=False,
                                                  cluster_unreachable_seconds=3))
            async with (
                running_node(control, "control-node", tmp_path / "control-node", HostRuntime()),
                running_node(worker, "worker-node", tmp_path / "worker-node", HostRuntime()),
                asyncio.TaskGroup() as group,
            ):
                running = group.create_task(engine.run())
                try:
                    await asyncio.wait_for(engine.ready.wait(), 30)
                    await control.create(execution_cluster("worker", {
                        "kubeConfig": yaml.safe_load(worker_plane.kubeconfig.read_text())}))
                    await control.create(execution_cluster("dead", {
                        "server": f"https://127.0.0.1:{free_port()}", "bearerToken": "t",
                        "tlsClientConfig": {"insecure": True}}))
                    for obj in (
                        shell_stage("build", "echo 'built:yes' > /cyclone/results/__result__"),
                        shell_stage("test", "true"),
                        workflow("wf", [{"name": "build"},
                                        {"name": "test", "depends": ["build"]}]),
                    ):
                        await control.create(obj)
                    for run in (aimed_at("worker", "remote-1"), aimed_at("dead", "dead-1"),
                                workflow_run("local-1", "wf")):
                        await control.create(run)
                    remote = await finished(control, "remote-1")
                    local = await finished(control, "local-1")
                    dead = await finished(control, "dead-1")

                    async def phases_shown() -> bool:
                        listed = (await control.list(kinds.EXECUTION_CLUSTER)).items
                        seen = {o["metadata"]["name"]: (o.get("status") or {}).get("phase")
                                for o in listed}
                        return seen == {"worker": "Connected", "dead": "Unavailable"}

                    await eventually(phases_shown, timeout=30, interval=0.5)
                finally:
                    running.cancel()

            assert overall(remote)["phase"] == "Succeeded", remote["status"]
            assert overall(local)["phase"] == "Succeeded", local["status"]
            assert overall(dead)["phase"] == "Failed"
            assert overall(dead)["reason"] == "ExecutionClusterUnavailable"
            assert "has not answered" in overall(dead)["message"]

            worker_pods = (await worker.list(kinds.POD, WORKER_NAMESPACE)).items
            assert sorted(p["metadata"]["labels"][keys.LABEL_STAGE] for p in worker_pods) == \
                ["build", "test"]
            assert all(p["status"]["phase"] == "Succeeded" for p in worker_pods)
            assert all(p["spec"]["nodeName"] == "worker-node" for p in worker_pods)
            assert (await control.list(kinds.POD, WORKER_NAMESPACE)).items == []
            control_pods = (await control.list(kinds.POD, NAMESPACE)).items
            assert {p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN] for p in control_pods} == \
                {"local-1"}
            assert remote["status"]["stages"]["build"]["outputs"] == \
                [{"key": "built", "value": "yes"}]
            with pytest.raises(NotFound):
                await worker.get(kinds.WORKFLOW_RUN, "remote-1", NAMESPACE)
