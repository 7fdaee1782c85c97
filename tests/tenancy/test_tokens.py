"""Attacker-side: tenant B against the engine key, A's artifact upload tokens, and
replayed SCM deliveries, through the REST API and what B's own stages can do."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets

import httpx

from cyclone.api import keys
from cyclone.engine.core.tokens import Purpose, artifact_upload_token, purpose_key
from cyclone.engine.signing import ENGINE_KEY_SECRET
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

KEY_REFS = ("${secrets.cyclone-system:cyclone-engine-key/data}",
            "${secrets.cyclone:cyclone-engine-key/data}",
            "${secrets.cyclone:cyclone-engine-key/data.key}")


async def engine_key(stack) -> bytes:
    secret = await stack.cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, keys.ENGINE_NAMESPACE)
    return base64.b64decode(secret["data"]["key"])


async def upload_token(stack, tenant: str, run: dict) -> str:
    """The token the engine gives the run's push containers (what a stage of it can read)."""
    key = purpose_key(await engine_key(stack), Purpose.ARTIFACT_UPLOAD)
    return artifact_upload_token(key, tenant, run["metadata"]["uid"])


async def packaging_flow(tenant, content: str) -> None:
    """demo/ci: one stage writes `content` to the Http output resource `package`."""
    expect(await tenant.http.post("/projects", json={"metadata": {"name": "demo"}}), 201, 409)
    expect(await tenant.http.post("/projects/demo/resources", json={
        "metadata": {"name": "package"}, "spec": {"type": "Http"}}), 201)
    stage = shell_stage("build", f"echo {content} > /workspace/package/app.bin")
    stage["spec"]["pod"]["outputs"] = {"resources": [{"name": "package",
                                                      "path": "/workspace/package"}]}
    await apply_flow(tenant.http, "demo", "ci", [stage])


async def upload(stack, path: str, token: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{stack.base_url}/apis/v1alpha1",
                                 timeout=30) as anonymous:
        return await anonymous.post(f"{path}/artifacts", params={"name": "package.tar.gz"},
                                    content=body, headers={"X-Upload-Token": token})


async def download(http: httpx.AsyncClient, path: str) -> bytes:
    response = await http.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return response.content


async def running(http: httpx.AsyncClient, path: str, within: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        run = expect(await http.get(path), 200)
        stages = (run.get("status") or {}).get("stages") or {}
        if any((s.get("status") or {}).get("phase") == "Running" for s in stages.values()):
            return run
        assert loop.time() < deadline, f"{path} never ran a stage: {run.get('status')}"
        await asyncio.sleep(0.2)


async def push_log(http: httpx.AsyncClient, path: str) -> str:
    """The run's push container log, streamed until the collector has completed it: the
    story of a failed upload."""
    params = {"stage": "build", "container": "csc-push-package"}
    try:
        return (await http.get(f"{path}/logstream", params=params, timeout=60)).text
    except httpx.TimeoutException:
        return (await http.get(f"{path}/logs", params=params)).text


async def try_to_read_the_key(stack) -> str:
    """B's stages naming the engine key, through the REST API and straight into the
    cluster as a kubectl user would; everything B can see of them afterwards."""
    b = stack.b
    script = "; ".join(f"echo 'got:{ref}'" for ref in KEY_REFS)
    seen = []
    expect(await b.http.post("/projects", json={"metadata": {"name": "steal"}}), 201)
    by_rest = await b.http.post("/projects/steal/stages", json=shell_stage("read", script))
    seen.append(by_rest.text)
    labels = {keys.LABEL_PROJECT: "steal"}
    stage = shell_stage("direct", script)
    stage.update(apiVersion=keys.API_VERSION, kind="Stage")
    stage["metadata"].update(namespace=b.namespace, labels=labels)
    await stack.cluster.create(stage, namespace=b.namespace)
    await stack.cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": "keys", "namespace": b.namespace, "labels": labels},
        "spec": {"stages": [{"name": "direct"}]}}, namespace=b.namespace)
    await stack.cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
        "metadata": {"name": "keys-1", "namespace": b.namespace,
                     "labels": {**labels, keys.LABEL_WORKFLOW: "keys"}},
        "spec": {"workflowRef": {"name": "keys"}}}, namespace=b.namespace)
    done = await wait_run(b.http, "steal", "keys", "keys-1")
    logs = await b.http.get(f"{runs_path('steal', 'keys')}/keys-1/logs",
                            params={"stage": "direct"})
    seen += [json.dumps(done), logs.text]
    return "\n".join(seen)


async def test_b_reaches_neither_the_engine_key_nor_as_artifact(stack):
    a, b = stack.a, stack.b
    await packaging_flow(a, "made-by-a")
    a_run = await start_run(a.http, "demo", "ci")
    a_path = f"{runs_path('demo', 'ci')}/{a_run['metadata']['name']}"
    done = await wait_run(a.http, "demo", "ci", a_run["metadata"]["name"])
    if done["status"]["overall"]["phase"] != "Succeeded":
        raise AssertionError(f"{json.dumps(done['status'])}\n{await push_log(a.http, a_path)}")
    original = await download(a.http, f"{a_path}/artifacts/package.tar.gz")
    key = await engine_key(stack)
    try:
        await stack.cluster.get(kinds.SECRET, ENGINE_KEY_SECRET, keys.SYSTEM_NAMESPACE)
        raise AssertionError("an engine key is readable in the system tenant's namespace")
    except NotFound:
        pass

    seen = await try_to_read_the_key(stack)
    for leaked in (base64.b64encode(key).decode(), key.hex()):
        assert leaked not in seen

    await apply_flow(b.http, "demo", "wait", [shell_stage("hold", "sleep 60")])
    b_run = await start_run(b.http, "demo", "wait")
    b_path = f"{runs_path('demo', 'wait')}/{b_run['metadata']['name']}"
    b_run = await running(b.http, b_path)
    b_token = await upload_token(stack, b.name, b_run)
    a_token = await upload_token(stack, a.name, a_run)
    digest = b_token.rsplit(".", 1)[1]
    attempts = [
        (a_path, b_token),                                    # B's own token on A's run
        (a_path, f"cyu.{a.name}.{digest}"),                   # relabelled as A's
        (a_path, f"cyu.{a.name}.{secrets.token_hex(32)}"),    # forged
        (a_path, a_token),                                    # A's, leaked, run finished
    ]
    answers = [await upload(stack, path, token, b"from-b") for path, token in attempts]
    assert {(r.status_code, r.text) for r in answers} == {(401, answers[0].text)}, \
        [r.text for r in answers]
    own = await upload(stack, b_path, b_token, b"b's own")
    assert own.status_code == 201, own.text
    expect(await b.http.put(f"{b_path}/stop"), 200)
    assert await download(a.http, f"{a_path}/artifacts/package.tar.gz") == original


async def test_a_deleted_and_recreated_run_refuses_the_old_token(stack):
    a = stack.a
    await apply_flow(a.http, "demo", "hold", [shell_stage("hold", "sleep 60")])
    path = f"{runs_path('demo', 'hold')}/again"
    first = await start_run(a.http, "demo", "hold", {"metadata": {"name": "again"}})
    await running(a.http, path)
    old = await upload_token(stack, a.name, first)
    expect(await a.http.put(f"{path}/stop"), 200)
    await wait_run(a.http, "demo", "hold", "again")
    expect(await a.http.delete(path), 200, 204)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (await a.http.get(path)).status_code != 404:
        assert loop.time() < deadline, "the deleted run never went away"
        await asyncio.sleep(0.2)
    second = await start_run(a.http, "demo", "hold", {"metadata": {"name": "again"}})
    second = await running(a.http, path)
    refused = await upload(stack, path, old, b"stale")
    accepted = await upload(stack, path, await upload_token(stack, a.name, second), b"fresh")
    expect(await a.http.put(f"{path}/stop"), 200)
    assert refused.status_code == 401, refused.text
    assert accepted.status_code == 201, accepted.text
    assert await download(a.http, f"{path}/artifacts/package.tar.gz") == b"fresh"


def signed_push(secret: str, delivery: str) -> dict:
    body = json.dumps({"ref": "refs/heads/main", "after": "abc123",
                       "repository": {"full_name": "org/app"}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content": body, "headers": {
        "X-GitHub-Event": "push", "X-Hub-Signature-256": signature,
        "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}}


async def test_a_replayed_signed_webhook_starts_no_second_run(stack):
    b = stack.b
    secret = secrets.token_hex(8)
    expect(await b.http.post("/integrations", json={"metadata": {"name": "github"}, "spec": {
        "type": "SCM", "scm": {"type": "GitHub", "server": "https://github.com",
                               "token": "t", "webhookSecret": secret}}}), 201)
    await apply_flow(b.http, "demo", "ci", [shell_stage("build", "true")])
    expect(await b.http.post("/projects/demo/workflows/ci/workflowtriggers", json={
        "metadata": {"name": "on-push"}, "spec": {"type": "SCM", "scm": {
            "secret": "github", "repo": "org/app", "push": {"enabled": True}}}}), 201)
    hook = f"/tenants/{b.name}/webhook?sourceType=SCM&integration=github"
    async with httpx.AsyncClient(base_url=f"{stack.base_url}/apis/v1alpha1",
                                 timeout=30) as provider:
        first = await provider.post(hook, **signed_push(secret, "delivery-1"))
        replay = await provider.post(hook, **signed_push(secret, "delivery-2"))
        unknown = await provider.post(hook.replace(b.name, "nobody"),
                                      **signed_push(secret, "delivery-3"))
        unsigned = await provider.post(hook, **signed_push("wrong", "delivery-4"))
    assert first.status_code == 200 and len(first.json()["workflowruns"]) == 1, first.text
    assert replay.status_code == 200 and replay.json()["duplicate"] is True, replay.text
    assert (unknown.status_code, unknown.text) == (unsigned.status_code, unsigned.text)
    listed = expect(await b.http.get(runs_path("demo", "ci")), 200)
    assert [r["metadata"]["name"] for r in listed["items"]] == first.json()["workflowruns"]
