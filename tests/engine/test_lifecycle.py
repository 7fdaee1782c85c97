"""Runs do not outlive their welcome: the history limit, and deletion of a tenant's
namespace while a finished run still waits for its GC."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from cyclone.engine.config import EngineConfig
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, NotFound

from .harness import API, BACKENDS, NAMESPACE, running_env, shell_stage, workflow, workflow_run


async def run_names(env) -> set[str]:
    listed = await env.cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)
    return {r["metadata"]["name"] for r in listed.items}


async def wait_for(check, within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"{what} within {within}s"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_history_limit_keeps_the_newest_finished_runs_and_never_a_running_one(
        tmp_path, backend):
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=3600, watch_pod_events=False,
                          max_workflowruns=2)
    async with running_env(tmp_path, config, backend=backend) as env:
        await env.apply(shell_stage("quick", "true"), workflow("wf", [{"name": "quick"}]),
                        workflow("other", [{"name": "quick"}]),
                        workflow_run("r0-paused", "wf", paused=True))
        await env.wait_run("r0-paused", lambda r: (r.get("status") or {}).get("deadline"))
        await env.apply(workflow_run("o1", "other"))
        await env.wait_phase("o1", "Succeeded", within=60)
        for name in ("r1", "r2", "r3", "r4"):
            await env.apply(workflow_run(name, "wf"))
            await env.wait_phase(name, "Succeeded", within=60)

        async def trimmed() -> bool:
            return {"r1", "r2"}.isdisjoint(await run_names(env))

        await wait_for(trimmed, 30, "the oldest finished runs were not deleted")
        assert await run_names(env) == {"r0-paused", "r3", "r4", "o1"}
        paused = await env.run("r0-paused")
        assert paused["status"]["overall"]["phase"] not in ("Succeeded", "Failed", "Cancelled")
        assert await env.pods("workflowrun.cyclone.dev/name=r1") == []


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_terminating_namespace_with_an_uncleaned_finished_run_is_deleted(
        tmp_path, backend):
    namespace = "cyclone-doomed"
    pvc = "cyclone-pvc-doomed"
    config = EngineConfig(gc_enabled=True, gc_delay_seconds=3600, watch_pod_events=False)
    async with running_env(tmp_path, config, backend=backend) as env:
        with contextlib.suppress(AlreadyExists):
            await env.cluster.create({"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": namespace}})
        await env.cluster.create({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": pvc, "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}},
        })
        stage = shell_stage("a", "echo done")
        stage["metadata"]["namespace"] = namespace
        flow = workflow("wf", [{"name": "a"}])
        flow["metadata"]["namespace"] = namespace
        run = {"apiVersion": API, "kind": "WorkflowRun",
               "metadata": {"name": "r1", "namespace": namespace},
               "spec": {"workflowRef": {"name": "wf"}}}
        for obj in (stage, flow, run):
            await env.cluster.create(obj)

        async def finished() -> bool:
            found = await env.cluster.get(kinds.WORKFLOW_RUN, "r1", namespace)
            phase = ((found.get("status") or {}).get("overall") or {}).get("phase")
            assert phase in (None, "Pending", "Running", "Succeeded"), found.get("status")
            return phase == "Succeeded" and "cyclone.dev/workflowrun-cleanup" in (
                found["metadata"].get("finalizers") or [])

        await wait_for(finished, 60, "the run did not succeed")
        done = await env.cluster.get(kinds.WORKFLOW_RUN, "r1", namespace)
        assert not done["status"].get("cleaned")

        await env.cluster.delete(kinds.NAMESPACE, namespace)

        async def namespace_gone() -> bool:
            try:
                await env.cluster.get(kinds.NAMESPACE, namespace)
            except NotFound:
                return True
            return False

        await wait_for(namespace_gone, 60, "the namespace was not deleted")
