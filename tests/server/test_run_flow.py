"""A run created through the API is executed by the engine and node agent to the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cyclone.engine.config import EngineConfig
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.fake import FakeRuntime

pytestmark = pytest.mark.timeout(120)

RUNS = "/projects/demo/workflows/ci/workflowruns"


async def _wait_for_phase(cluster, name: str, phases: set[str]) -> None:
    """Until the run reaches one of `phases`, following its watch events."""
    while True:
        async for event in cluster.watch(kinds.WORKFLOW_RUN, "cyclone-devops",
                                         field_selector=f"metadata.name={name}"):
            status = event.object.get("status") or {}
            if (status.get("overall") or {}).get("phase") in phases:
                return


async def test_run_created_through_api_succeeds_in_opened_cluster(cluster, devops,
                                                                  tmp_path: Path):
    engine = Engine(cluster, EngineConfig(gc_enabled=False, workers=2))
    agent = NodeAgent(cluster, node_name="node-1", data_dir=tmp_path / "node",
                      runtime=FakeRuntime(), schedule_unbound=True, heartbeat_seconds=1)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(engine.run()), group.create_task(agent.run())]
        try:
            await devops.post("/integrations", json={"metadata": {"name": "local"}, "spec": {
                "type": "Cluster", "cluster": {"isControlCluster": True,
                                               "namespace": "cyclone-devops-worker"}}})
            assert (await devops.put("/integrations/local/opencluster")).status_code == 200
            await devops.post("/projects", json={"metadata": {"name": "demo"}})
            for name in ("build", "test"):
                response = await devops.post("/projects/demo/stages", json={
                    "metadata": {"name": name}, "spec": {"pod": {"spec": {"containers": [
                        {"image": "busybox", "command": ["true"],
                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                       "limits": {"cpu": "100m", "memory": "64Mi"}}}]}}}})
                assert response.status_code == 201, response.text
            await devops.post("/projects/demo/workflows", json={
                "metadata": {"name": "ci"}, "spec": {"stages": [
                    {"name": "build"}, {"name": "test", "depends": ["build"]}]}})
            created = await devops.post(RUNS, json={"metadata": {"name": "r1"}})
            assert created.status_code == 201, created.text
            assert created.json()["spec"]["executionContext"]["namespace"] == \
                "cyclone-devops-worker"
            async with asyncio.timeout(60):
                await _wait_for_phase(cluster, "r1", {"Succeeded", "Failed"})
            run = (await devops.get(f"{RUNS}/r1")).json()
            assert run["status"]["overall"]["phase"] == "Succeeded", run["status"]
            assert set(run["status"]["stages"]) == {"build", "test"}
            pod = run["status"]["stages"]["build"]["pod"]
            assert pod["namespace"] == "cyclone-devops-worker"
        finally:
            for task in tasks:
                task.cancel()
