"""Server-wide settings the engine honours: every finished run is POSTed to each
notification endpoint with its web link (a workflow's Slack message ends with it too), and
a tenant that opened no cluster has its runs fail at once, saying so, instead of waiting for
a PVC that nobody makes."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from typing import Any

import pytest

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.weburl import ANNOTATION_WEB_URL
from cyclone.kube import kinds

from .harness import (
    BACKENDS,
    NAMESPACE,
    allow_local_addresses,
    overall,
    running_env,
    shell_stage,
    workflow,
    workflow_run,
)
from .receiver import Receiver, http_receiver

TEMPLATE = "https://ci.example.com/{tenant}/{project}/{workflow}/{run}"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_every_finished_run_is_posted_once_to_each_endpoint_with_its_link(
        tmp_path, backend):
    async with http_receiver() as audit, http_receiver(status=500) as down, \
            http_receiver() as slack:
        config = EngineConfig(
            gc_enabled=False, watch_pod_events=False, web_url_template=TEMPLATE,
            notification_endpoints=[{"name": "audit", "url": audit.url},
                                    {"name": "down", "url": down.url}])
        async with running_env(tmp_path, config, backend=backend) as env:
            await allow_local_addresses(env.cluster)
            flow = workflow("wf", [{"name": "build"}], notification={
                "policy": "Always", "receivers": [{"type": "Slack", "addresses": [slack.url]}]})
            flow["metadata"]["labels"] = {keys.LABEL_PROJECT: "web"}
            run = workflow_run("r1", "wf")
            run["metadata"]["labels"] = {keys.LABEL_PROJECT: "web", keys.LABEL_WORKFLOW: "wf"}
            await env.apply(shell_stage("build", "exit 3"), flow, run)
            await env.wait_run("r1", lambda r: len(
                (r.get("status") or {}).get("notifications") or {}) == 3, within=60)
            assert env.engine is not None
            await env.engine.run_controller.requeue_and_wait(f"{NAMESPACE}/r1")
            run = await env.run("r1")
    assert overall(run)["phase"] == "Failed"
    recorded = run["status"]["notifications"]
    assert recorded["audit"] == {"result": "Succeeded", "message": "HTTP 200"}
    assert recorded["down"]["result"] == "Failed" and "HTTP 500" in recorded["down"]["message"]
    uid = run["metadata"]["uid"]
    for endpoint in (audit, down):
        ids = [headers.get("x-cyclone-delivery") for headers in endpoint.headers]
        assert len(ids) == len(set(ids)), deliveries(endpoint)
    assert len(of_run(audit, uid)) == len(of_run(down, uid)) == 1, deliveries(audit, down)
    [body] = of_run(audit, uid)
    assert body["metadata"]["name"] == "r1" and body["status"]["overall"]["phase"] == "Failed"
    assert body["metadata"]["annotations"][ANNOTATION_WEB_URL] == \
        "https://ci.example.com/system/web/wf/r1"
    assert ANNOTATION_WEB_URL not in (run["metadata"].get("annotations") or {})
    assert f"{uid}:audit" in [headers.get("x-cyclone-delivery") for headers in audit.headers]
    [message] = slack.bodies
    assert message["text"].endswith("\nhttps://ci.example.com/system/web/wf/r1")


def of_run(receiver: Receiver, uid: str) -> list[dict]:
    """The bodies `receiver` got about the run `uid`. The engine posts every finished run
    in the cluster, and on the real apiserver other tests may have left some."""
    return [body for body in receiver.bodies if body.get("metadata", {}).get("uid") == uid]


def deliveries(*receivers: Receiver) -> list[tuple[Any, ...]]:
    """What each endpoint received: run, uid, phase, notifications it carried, delivery id."""
    return [
        (body.get("metadata", {}).get("name"), body.get("metadata", {}).get("uid"),
         overall(body).get("phase"), sorted((body.get("status") or {}).get("notifications") or {}),
         headers.get("x-cyclone-delivery"))
        for receiver in receivers
        for body, headers in zip(receiver.bodies, receiver.headers, strict=True)
    ]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_failing_endpoint_is_recorded_by_its_name_and_status_never_its_url_or_answer(
        tmp_path, backend):
    token = f"ADMIN-SECRET-{secrets.token_hex(4)}"
    async with http_receiver(status=500) as down:
        down.reply = json.dumps({"error": f"bad token {token}"}).encode()
        config = EngineConfig(gc_enabled=False, watch_pod_events=False, notification_endpoints=[
            {"name": "down", "url": f"{down.url}?token={token}"},
            {"name": "gone", "url": f"http://127.0.0.1:{closed_port()}/services/{token}"}])
        async with running_env(tmp_path, config, backend=backend) as env:
            await env.apply(shell_stage("build", "exit 3"), workflow("wf", [{"name": "build"}]),
                            workflow_run("r1", "wf"))
            run = await env.wait_run("r1", lambda r: len(
                (r.get("status") or {}).get("notifications") or {}) == 2, within=60)
    assert len(of_run(down, run["metadata"]["uid"])) == 1, deliveries(down)
    assert run["status"]["notifications"] == {
        "down": {"result": "Failed", "message": "HTTP 500"},
        "gone": {"result": "Failed", "message": "POST to gone: connection failed"}}
    assert token not in json.dumps(run) and "127.0.0.1" not in json.dumps(run["status"])


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_run_of_a_tenant_that_opened_no_cluster_fails_naming_what_to_do(
        tmp_path, backend):
    tenant = f"lonely{secrets.token_hex(3)}"
    namespace = keys.tenant_namespace(tenant)
    async with running_env(tmp_path, backend=backend) as env:
        await env.cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": namespace, "labels": {keys.LABEL_TENANT: tenant},
            "annotations": {keys.ANNOTATION_TENANT_INFO: json.dumps({})}}})
        objects = [shell_stage("a", "true"), workflow("wf", [{"name": "a"}]),
                   workflow_run("r1", "wf")]
        for obj in objects:
            obj["metadata"]["namespace"] = namespace
            await env.cluster.create(obj)
        deadline = time.monotonic() + 20
        while True:
            run = await env.cluster.get(kinds.WORKFLOW_RUN, "r1", namespace)
            if overall(run).get("phase") in ("Succeeded", "Failed", "Cancelled") or \
                    time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        pods = (await env.cluster.list(kinds.POD, namespace)).items
    assert overall(run)["phase"] == "Failed", run.get("status")
    message = overall(run)["message"]
    assert f"tenant {tenant!r} has opened no cluster" in message
    assert "cyclone integration open-cluster" in message and "opencluster" in message
    assert pods == []
