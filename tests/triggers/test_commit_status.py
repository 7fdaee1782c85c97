"""Commit statuses reach a stand-in GitHub/GitLab API with the right state, context and URL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.commit_status import ANNOTATION_COMMIT_STATUS
from cyclone.engine.core.scm import Provider
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.fake import FakeRuntime

from . import payloads as p
from .scm_standin import scm_stand_in
from .support import (
    NAMESPACE,
    PROJECT,
    WORKFLOW,
    create_integration,
    create_trigger,
    post_event,
    scm_trigger_object,
    shell_stage,
    workflow_object,
)


@contextlib.asynccontextmanager
async def engine_and_node(cluster, tmp_path) -> AsyncIterator[Engine]:
    engine = Engine(cluster, EngineConfig(gc_enabled=False, watch_pod_events=False,
                                          http_timeout_seconds=5))
    agent = NodeAgent(cluster, node_name="node-1", data_dir=tmp_path / "node",
                      runtime=FakeRuntime(), schedule_unbound=True, heartbeat_seconds=30)
    tasks = [asyncio.create_task(engine.run()), asyncio.create_task(agent.run())]
    try:
        await asyncio.wait_for(engine.ready.wait(), 10)
        yield engine
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def add_workflow(cluster, with_stage: bool = True) -> None:
    if with_stage:
        await cluster.create(shell_stage("compile", "true"))
    await cluster.create(workflow_object(WORKFLOW, ["compile"]))


async def wait_annotation(cluster, run: str, state: str, within: float = 15.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        obj = await cluster.get(kinds.WORKFLOW_RUN, run, NAMESPACE)
        raw = (obj["metadata"].get("annotations") or {}).get(ANNOTATION_COMMIT_STATUS)
        if raw and json.loads(raw)["state"] == state:
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"no {state} commit status on {run}: {raw} {obj.get('status')}")
        await asyncio.sleep(0.05)


async def test_github_gets_pending_then_success_with_context_and_link(
        admin, cluster, anonymous, tmp_path):
    async with scm_stand_in() as github:
        await create_integration(admin, "gh", "GitHub", github.url)
        await add_workflow(cluster)
        await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                         push={"enabled": True}))
        async with engine_and_node(cluster, tmp_path):
            response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                        p.encode(p.github_push()))
            [run] = response.json()["workflowruns"]
            final = await wait_annotation(cluster, run, "success")
        assert final["status"]["overall"]["phase"] == "Succeeded"
        states = [r for r in github.requests if r.path.endswith(f"/statuses/{p.SHA}")]
        assert [r.body["state"] for r in states] == ["pending", "success"]
        for request in states:
            assert request.method == "POST"
            assert request.path == f"/api/v3/repos/octo/app/statuses/{p.SHA}"
            assert request.headers["authorization"] == "token tok-123"
            assert request.body["context"] == f"cyclone/{WORKFLOW}"
            assert request.body["target_url"] == (
                f"http://cyclone.test:7099/projects/{PROJECT}/workflows/{WORKFLOW}/runs/{run}")


async def test_gitlab_gets_the_failed_state_of_a_failed_run(admin, cluster, anonymous,
                                                            tmp_path):
    async with scm_stand_in() as gitlab:
        await create_integration(admin, "gl", "GitLab", gitlab.url)
        await add_workflow(cluster, with_stage=False)
        await create_trigger(cluster, scm_trigger_object(
            "mr", "gl", "mike/diaspora", pullRequest={"enabled": True}))
        async with engine_and_node(cluster, tmp_path):
            response = await post_event(anonymous, "gl", Provider.GITLAB, "Merge Request Hook",
                                        p.encode(p.gitlab_merge_request("open", 3)))
            [run] = response.json()["workflowruns"]
            final = await wait_annotation(cluster, run, "failure")
        assert final["status"]["overall"]["phase"] == "Failed"
        statuses = [r for r in gitlab.requests if "/statuses/" in r.path]
        assert statuses, [f"{r.method} {r.path}" for r in gitlab.requests]
        last = statuses[-1]
        assert last.path == f"/api/v4/projects/mike%2Fdiaspora/statuses/{p.SHA}"
        assert last.headers["private-token"] == "tok-123"
        assert last.body["state"] == "failed"
        assert last.body["name"] == f"cyclone/{WORKFLOW}"
        assert last.body["target_url"].endswith(f"/workflows/{WORKFLOW}/runs/{run}")


async def test_a_provider_error_is_recorded_and_the_run_still_succeeds(
        admin, cluster, anonymous, tmp_path):
    async with scm_stand_in(status=500) as github:
        await create_integration(admin, "gh", "GitHub", github.url)
        await add_workflow(cluster)
        await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                         push={"enabled": True}))
        async with engine_and_node(cluster, tmp_path):
            response = await post_event(anonymous, "gh", Provider.GITHUB, "push",
                                        p.encode(p.github_push()))
            [run] = response.json()["workflowruns"]
            final = await wait_annotation(cluster, run, "success")
    assert final["status"]["overall"]["phase"] == "Succeeded"
    recorded = json.loads(final["metadata"]["annotations"][ANNOTATION_COMMIT_STATUS])
    assert recorded["ok"] is False and "HTTP 500" in recorded["message"]
