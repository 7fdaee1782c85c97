"""SCM triggers register (and on deletion remove) the repository webhook."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.scm_hooks import ANNOTATION_WEBHOOK, FINALIZER
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound

from .scm_standin import scm_stand_in
from .support import NAMESPACE, create_integration, create_trigger, scm_trigger_object

BASE = "http://cyclone.example:7099"


@contextlib.asynccontextmanager
async def engine(cluster) -> AsyncIterator[Engine]:
    running = Engine(cluster, EngineConfig(gc_enabled=False, watch_pod_events=False,
                                           callback_base_url=BASE, http_timeout_seconds=5))
    task = asyncio.create_task(running.run())
    try:
        await asyncio.wait_for(running.ready.wait(), 10)
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_trigger(cluster, name: str, check, within: float = 30.0):
    deadline = time.monotonic() + within
    while True:
        try:
            obj = await cluster.get(kinds.WORKFLOW_TRIGGER, name, NAMESPACE)
        except NotFound:
            obj = None
        if check(obj):
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"trigger {name} did not reach the expected state: {obj}")
        await asyncio.sleep(0.05)


async def wait_until(check, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def test_github_hook_registered_on_create_and_removed_on_delete(admin, cluster):
    async with scm_stand_in() as github:
        await create_integration(admin, "gh", "GitHub", github.url)
        await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                         push={"enabled": True}))
        async with engine(cluster):
            registered = await wait_trigger(
                cluster, "on-push",
                lambda t: ANNOTATION_WEBHOOK in (t["metadata"].get("annotations") or {}))
            record = json.loads(registered["metadata"]["annotations"][ANNOTATION_WEBHOOK])
            assert record == {"id": "42", "repo": "octo/app"}
            assert FINALIZER in registered["metadata"]["finalizers"]
            [create] = github.requests
            assert (create.method, create.path) == ("POST", "/api/v3/repos/octo/app/hooks")
            assert create.headers["authorization"] == "token tok-123"
            assert create.body["config"]["url"] == (
                f"{BASE}/apis/v1alpha1/tenants/system/webhook?sourceType=SCM&integration=gh")
            assert create.body["config"]["secret"] == "s3cret"
            assert set(create.body["events"]) >= {"push", "pull_request"}
            await cluster.delete(kinds.WORKFLOW_TRIGGER, "on-push", NAMESPACE)
            await wait_trigger(cluster, "on-push", lambda t: t is None)
        assert (github.requests[-1].method, github.requests[-1].path) == (
            "DELETE", "/api/v3/repos/octo/app/hooks/42")


async def test_gitlab_hook_uses_the_token_header_and_project_path(admin, cluster):
    async with scm_stand_in() as gitlab:
        await create_integration(admin, "gl", "GitLab", gitlab.url)
        await create_trigger(cluster, scm_trigger_object("mr", "gl", "mike/diaspora",
                                                         pullRequest={"enabled": True}))
        async with engine(cluster):
            await gitlab.wait_for(1)
        [create] = gitlab.requests
        assert create.path == "/api/v4/projects/mike%2Fdiaspora/hooks"
        assert create.headers["private-token"] == "tok-123"
        assert create.body["token"] == "s3cret" and create.body["merge_requests_events"]


async def test_integration_can_opt_out_of_registration(admin, cluster):
    async with scm_stand_in() as github:
        await create_integration(admin, "gh", "GitHub", github.url, registerWebhook=False)
        await create_trigger(cluster, scm_trigger_object("on-push", "gh", "octo/app",
                                                         push={"enabled": True}))
        async with engine(cluster) as running:
            triggers = running.triggers
            await wait_until(lambda: triggers.trigger_informer.get(NAMESPACE, "on-push"))
            await triggers.hooks_controller.requeue_and_wait(f"{NAMESPACE}/on-push")
            trigger = await cluster.get(kinds.WORKFLOW_TRIGGER, "on-push", NAMESPACE)
        assert github.requests == []
        assert not trigger["metadata"].get("finalizers")


async def test_trigger_naming_its_integration_in_scm_secret_uses_the_integration_secret(
        admin, cluster):
    async with scm_stand_in() as github:
        await create_integration(admin, "gh", "GitHub", github.url, webhookSecret="shared")
        trigger = scm_trigger_object("classic", "gh", "octo/app", secret="gh",
                                     push={"enabled": True})
        del trigger["metadata"]["labels"]["workflowtrigger.cyclone.dev/event-source"]
        await create_trigger(cluster, trigger)
        async with engine(cluster):
            [create] = await github.wait_for(1)
        assert create.body["config"]["secret"] == "shared"
