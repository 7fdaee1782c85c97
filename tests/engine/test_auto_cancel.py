"""Pull-request auto-cancel end to end: a newer webhook delivery for the same pull request
stops the older run through the engine's one stop path, which deletes its running pods at
once rather than leaving them to the garbage collector."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from support.clusters import eventually
from triggers import payloads
from triggers.support import (
    API,
    create_workflow,
    post_event,
    scm_trigger_object,
)

from cyclone.engine.config import EngineConfig
from cyclone.engine.core.scm import Provider
from cyclone.server import create_app
from cyclone.server.webhooks import router as webhook_router

from .gates import Gate
from .harness import (
    BACKENDS,
    NAMESPACE,
    Env,
    allow_local_addresses,
    overall,
    running_env,
    shell_stage,
    stage_status,
)
from .served import free_port

ADMIN_TOKEN = "auto-cancel-admin"
POD_GONE_WITHIN = 15.0
"""Far below the garbage collector's delay (`gc_delay_seconds`, left at its default)."""


@contextlib.asynccontextmanager
async def server_clients(env: Env, data_dir) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """(admin, anonymous) clients of the real server app on the engine's cluster, with the
    webhook route mounted."""
    app = create_app(cluster=env.cluster, data_dir=data_dir, admin_token=ADMIN_TOKEN,
                     extra_routers=[webhook_router], server_url="http://cyclone.test:7099")
    transport = httpx.ASGITransport(app=app)
    base_url = "http://cyclone.test" + API
    async with (
        httpx.AsyncClient(transport=transport, base_url=base_url,
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin,
        httpx.AsyncClient(transport=transport, base_url=base_url) as anonymous,
    ):
        yield admin, anonymous


async def pull_request_delivery(anonymous: httpx.AsyncClient, action: str, head: str,
                                delivery: str) -> dict:
    response = await post_event(
        anonymous, "gh", Provider.GITHUB, "pull_request",
        payloads.encode(payloads.github_pull_request(action, 2, head=head)), delivery=delivery)
    assert response.status_code == 200, response.text
    return response.json()


async def pod_gone(env: Env, name: str) -> bool:
    return name not in {pod["metadata"]["name"] for pod in await env.pods()}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_newer_pull_request_delivery_stops_the_older_runs_running_pod_at_once(
        tmp_path, backend):
    config = EngineConfig(watch_pod_events=False)
    assert config.gc_enabled and config.gc_delay_seconds > 10 * POD_GONE_WITHIN
    async with (
        running_env(tmp_path, config, backend=backend) as env,
        server_clients(env, tmp_path / "server") as (admin, anonymous),
    ):
        await allow_local_addresses(env.cluster)
        response = await admin.post("/integrations", json={
            "metadata": {"name": "gh"}, "spec": {"type": "SCM", "scm": {
                "type": "GitHub", "token": "tok-123",
                "server": f"http://127.0.0.1:{free_port()}"}}})
        assert response.status_code == 201, response.text
        await create_workflow(env.cluster)
        gate = Gate()
        await env.apply(shell_stage("compile", f"until {gate.check()}; do sleep 0.05; done"))
        await env.cluster.create(scm_trigger_object("pr", "gh", "octo/app",
                                                    pullRequest={"enabled": True}),
                                 namespace=NAMESPACE)
        [older] = (await pull_request_delivery(anonymous, "opened", payloads.SHA,
                                               "pr-1"))["workflowruns"]
        running = await env.wait_run(older, lambda r: (
            stage_status(r, "compile").get("phase") == "Running"
            and bool(r["status"]["stages"]["compile"].get("pod"))), within=60)
        pod = running["status"]["stages"]["compile"]["pod"]["name"]
        assert not await pod_gone(env, pod)

        answer = await pull_request_delivery(anonymous, "synchronize", payloads.SHA2, "pr-2")
        assert answer["cancelled"] == [older]
        [newer] = answer["workflowruns"]

        ended = await env.wait_phase(older, "Cancelled")
        assert overall(ended)["reason"] == "AutoCancelPreviousBuild"
        assert overall(ended)["message"] == f"superseded by run {newer} of pull request 2"
        assert stage_status(ended, "compile")["phase"] == "Cancelled"
        await eventually(lambda: pod_gone(env, pod), timeout=POD_GONE_WITHIN)

        gate.touch()
        await env.wait_phase(newer, "Succeeded", within=60)
