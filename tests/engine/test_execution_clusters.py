"""ExecutionCluster objects give the engine a pod controller per worker cluster: a run aimed
at a worker gets its pods there, and a worker that is unusable, gone or silent fails only
the runs aimed at it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.tenancy import record_patch
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.errors import Unavailable
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.fake import FakeRuntime

from .harness import (
    NAMESPACE,
    PVC,
    Env,
    overall,
    prepare_tenant,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

WORKER_NAMESPACE = "cyclone-default-worker"


class Unclosed:
    """A worker cluster handed to the engine; closing it is the test's business."""

    def __init__(self, cluster) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str):
        return getattr(self._cluster, name)

    async def close(self) -> None:
        return None


class Silent:
    """A cluster that never answers."""

    async def list(self, *args, **kwargs):
        raise Unavailable("connection refused")

    async def watch(self, *args, **kwargs):
        raise Unavailable("connection refused")
        yield  # pragma: no cover

    async def create(self, *args, **kwargs):
        raise Unavailable("connection refused")

    async def get(self, *args, **kwargs):
        raise Unavailable("connection refused")

    async def delete(self, *args, **kwargs):
        raise Unavailable("connection refused")

    async def close(self) -> None:
        return None


def execution_cluster(name: str, server: str) -> dict:
    """An ExecutionCluster the default tenant opened, with its workload namespace there."""
    opened = record_patch(None, keys.DEFAULT_TENANT, "worker", (WORKER_NAMESPACE, PVC))
    return {"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
            "metadata": {"name": name, **opened["metadata"]},
            "spec": {"credential": {"server": server}}}


@contextlib.asynccontextmanager
async def two_clusters(
    tmp_path: Path, config: EngineConfig, *, stage_seconds: float = 0.05
) -> AsyncIterator[tuple[Env, Env]]:
    control = EmbeddedCluster(tmp_path / "control.db")
    worker = EmbeddedCluster(tmp_path / "worker.db")
    for cluster in (control, worker):
        await cluster.start()
        await prepare_tenant(cluster)
    await worker.create({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": WORKER_NAMESPACE}})

    def connect(name: str, credential: dict):
        if credential.get("server") == "https://worker":
            return Unclosed(worker)
        if credential.get("server") == "https://silent":
            return Silent()
        raise ValueError(f"no route to {credential.get('server')}")

    agents = [
        NodeAgent(cluster, node_name=f"node-{index}", data_dir=tmp_path / f"node-{index}",
                  runtime=FakeRuntime(duration_seconds=stage_seconds), schedule_unbound=True,
                  heartbeat_seconds=30)
        for index, cluster in enumerate((control, worker))
    ]
    engine = Engine(control, config, connect=connect)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(agent.run()) for agent in agents]
            tasks.append(group.create_task(engine.run()))
            await asyncio.wait_for(engine.ready.wait(), 10)
            try:
                yield Env(control, engine, tmp_path), Env(worker, None, tmp_path)
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await control.close()
        await worker.close()


async def registered(env: Env, name: str, within: float = 30.0) -> None:
    """Wait until the engine has reconciled the ExecutionCluster `name`: it has a client
    for it, or knows why it has none."""
    registry = env.engine.registry
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while name not in registry.clusters and name not in registry.problems:
        assert loop.time() < deadline, f"the engine never took up execution cluster {name}"
        await asyncio.sleep(0.02)


def aimed_at(cluster: str, name: str) -> dict:
    return workflow_run(name, "wf", executionContext={
        "cluster": cluster, "namespace": WORKER_NAMESPACE})


async def test_run_aimed_at_a_worker_cluster_gets_its_pods_there(tmp_path):
    async with two_clusters(tmp_path, EngineConfig(gc_enabled=False)) as (control, worker):
        await control.apply(
            execution_cluster("worker", "https://worker"),
            shell_stage("build", "true"), shell_stage("test", "true"),
            workflow("wf", [{"name": "build"}, {"name": "test", "depends": ["build"]}]),
        )
        await registered(control, "worker")
        await control.apply(aimed_at("worker", "remote-1"), workflow_run("local-1", "wf"))
        remote = await control.wait_phase("remote-1", "Succeeded")
        await control.wait_phase("local-1", "Succeeded")
        worker_pods = (await worker.cluster.list(kinds.POD, WORKER_NAMESPACE)).items
        assert sorted(p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN] for p in worker_pods) \
            == ["remote-1", "remote-1"]
        assert (await control.cluster.list(kinds.POD, WORKER_NAMESPACE)).items == []
        assert remote["status"]["stages"]["build"]["pod"]["namespace"] == WORKER_NAMESPACE
        assert (await worker.cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)).items == []


async def test_unusable_credential_fails_only_the_runs_aimed_at_it(tmp_path):
    async with two_clusters(tmp_path, EngineConfig(gc_enabled=False)) as (control, _):
        await control.apply(
            execution_cluster("broken", "https://nowhere"),
            shell_stage("build", "true"), shell_stage("test", "true"),
            workflow("wf", [{"name": "build"}, {"name": "test", "depends": ["build"]}]),
        )
        await registered(control, "broken")
        await control.apply(aimed_at("broken", "remote-1"), workflow_run("local-1", "wf"))
        failed = await control.wait_phase("remote-1", "Failed")
        await control.wait_phase("local-1", "Succeeded")
    assert overall(failed)["reason"] == "ExecutionClusterUnavailable"
    assert "no route to https://nowhere" in overall(failed)["message"]


async def test_silent_cluster_fails_its_runs_after_the_configured_wait(tmp_path):
    config = EngineConfig(gc_enabled=False, cluster_unreachable_seconds=0.5)
    async with two_clusters(tmp_path, config) as (control, _):
        await control.apply(
            execution_cluster("silent", "https://silent"),
            shell_stage("build", "true"), shell_stage("test", "true"),
            workflow("wf", [{"name": "build"}, {"name": "test", "depends": ["build"]}]),
        )
        await control.apply(aimed_at("silent", "remote-1"), workflow_run("local-1", "wf"))
        failed = await control.wait_phase("remote-1", "Failed", within=15)
        await control.wait_phase("local-1", "Succeeded")
    assert overall(failed)["reason"] == "ExecutionClusterUnavailable"
    assert "has not answered" in overall(failed)["message"]
    assert "connection refused" in overall(failed)["message"]


async def test_deleting_the_execution_cluster_fails_its_running_stages(tmp_path):
    config = EngineConfig(gc_enabled=False)
    async with two_clusters(tmp_path, config, stage_seconds=60) as (control, _):
        await control.apply(
            execution_cluster("worker", "https://worker"),
            shell_stage("build", "true"),
            workflow("wf", [{"name": "build"}]),
        )
        await registered(control, "worker")
        await control.apply(aimed_at("worker", "remote-1"))
        await control.wait_run(
            "remote-1", lambda r: stage_status(r, "build").get("phase") == "Running")
        await control.cluster.delete(kinds.EXECUTION_CLUSTER, "worker")
        gone = await control.wait_phase("remote-1", "Failed")
    assert overall(gone)["reason"] == "ExecutionClusterNotFound"
    assert stage_status(gone, "build")["phase"] == "Failed"


async def test_each_execution_cluster_shows_whether_the_engine_reaches_it(tmp_path):
    config = EngineConfig(gc_enabled=False, cluster_unreachable_seconds=0.5,
                          cluster_status_seconds=0.05)
    async with two_clusters(tmp_path, config) as (control, _):
        await control.apply(
            execution_cluster("worker", "https://worker"),
            execution_cluster("broken", "https://nowhere"),
            execution_cluster("silent", "https://silent"),
        )

        async def phases() -> dict[str, str]:
            listed = (await control.cluster.list(kinds.EXECUTION_CLUSTER)).items
            return {o["metadata"]["name"]: (o.get("status") or {}).get("phase") for o in listed}

        wanted = {"worker": "Connected", "broken": "Invalid", "silent": "Unavailable"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while (seen := await phases()) != {**seen, **wanted}:
            assert loop.time() < deadline, f"execution cluster phases: {seen}"
            await asyncio.sleep(0.05)
        broken = await control.cluster.get(kinds.EXECUTION_CLUSTER, "broken")
    assert "no route to https://nowhere" in broken["status"]["message"]
