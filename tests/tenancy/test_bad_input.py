"""An attacker's bad input gets a clear 4xx (or a clearly failed run), never a 500, a hang,
memory growth, or a call from inside the cluster to a local address."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from cyclone.api import keys

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

MIB = 1024 * 1024


def rss_bytes() -> int:
    """The resident set size of this process (where the stack's server runs)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def raw_status_line(base_url: str, request: bytes, within: float = 10.0) -> str:
    """Send only a request head and read the status line the server answers with."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), within)).decode().strip()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def streamed(total: int, chunk: int = MIB) -> AsyncIterator[bytes]:
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield block


async def test_bodies_are_bounded_before_authentication(stack):
    head = ("POST /apis/v1alpha1/projects HTTP/1.1\r\nHost: cyclone\r\n"
            "Content-Type: application/json\r\nContent-Length: {length}\r\n{auth}\r\n")
    status = await raw_status_line(stack.base_url, head.format(
        length=200 * MIB, auth="").encode())
    assert status.startswith("HTTP/1.1 401"), status
    token = stack.a.http.headers["Authorization"]
    status = await raw_status_line(stack.base_url, head.format(
        length=200 * MIB, auth=f"Authorization: {token}\r\n").encode())
    assert status.startswith("HTTP/1.1 413"), status

    before = rss_bytes()
    with contextlib.suppress(httpx.TransportError):
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as anonymous:
            response = await anonymous.post("/apis/v1alpha1/projects",
                                            content=streamed(200 * MIB))
            assert response.status_code == 401, response.text
    assert rss_bytes() - before < 20 * MIB

    big = {"metadata": {"name": "big", "annotations": {"x": "y" * (20 * MIB)}}}
    try:
        response = await stack.a.http.post("/projects", json=big)
        assert response.status_code == 413, response.text
    except httpx.TransportError:
        pass  # answered 413 and closed while the body was still being sent
    assert (await stack.a.http.get("/projects/big")).status_code == 404

    deep = b'{"metadata": {"name": "deep"}, "spec": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await stack.a.http.post("/projects", content=deep,
                                       headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "nests deeper than 64 levels" in response.json()["message"]
    assert (await stack.admin.get("/tenants")).status_code == 200


async def test_runs_that_could_never_start_are_refused_or_failed(stack):
    a = stack.a
    await apply_flow(a.http, "bad", "ci", [shell_stage("build", "true")])
    runs = runs_path("bad", "ci")
    for body, field in (({"spec": {"timeout": "99999999999h"}}, "spec.timeout"),
                        ({"spec": {"startStages": ["nope"]}}, "spec.startStages[0]"),
                        ({"spec": {"endStages": ["build", "nope"]}}, "spec.endStages[1]")):
        response = await a.http.post(runs, json=body)
        assert response.status_code == 422, response.text
        assert field in response.json()["message"]
    response = await a.http.post("/projects/bad/workflows", json={
        "metadata": {"name": "empty"}, "spec": {"stages": []}})
    assert response.status_code == 422, response.text

    labels = {keys.LABEL_PROJECT: "bad"}
    await stack.cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": "empty", "namespace": a.namespace, "labels": labels},
        "spec": {"stages": []}}, namespace=a.namespace)
    context = (await start_run(a.http, "bad", "ci"))["spec"]["executionContext"]
    direct = {
        "absurd": ("ci", {"timeout": "99999999999h"}, "maximum of 30 days"),
        "unknown": ("ci", {"startStages": ["nope"]}, 'unknown stage "nope"'),
        "nothing": ("empty", {}, "the workflow has no stages"),
    }
    for name, (workflow, spec, _) in direct.items():
        await stack.cluster.create({
            "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
            "metadata": {"name": name, "namespace": a.namespace,
                         "labels": {**labels, keys.LABEL_WORKFLOW: workflow}},
            "spec": {"workflowRef": {"name": workflow}, "executionContext": context, **spec},
        }, namespace=a.namespace)
    for name, (workflow, _, reason) in direct.items():
        run = await wait_run(a.http, "bad", workflow, name)
        overall = run["status"]["overall"]
        assert overall["phase"] == "Failed", overall
        assert reason in overall["message"], overall


@contextlib.asynccontextmanager
async def fake_scm_and_receiver() -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that answers every request with `[]` and records it."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode()
        length = 0
        while (header := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        seen.append(" ".join(line.split(" ")[:2]))
        body = json.dumps([{"full_name": "org/app", "html_url": "u"}]).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    finally:
        server.close()
        await server.wait_closed()


async def allow_local(stack, tenant: str) -> None:
    current = expect(await stack.admin.get(f"/tenants/{tenant}"), 200)
    spec = {**current["spec"], "allowLocalAddresses": True}
    expect(await stack.admin.put(f"/tenants/{tenant}", json={
        "metadata": current["metadata"], "spec": spec}), 200)


async def test_local_scm_servers_and_receivers_are_refused_until_an_admin_allows_them(stack):
    a, b = stack.a, stack.b
    async with fake_scm_and_receiver() as (url, seen):
        scm = {"metadata": {"name": "ghe"}, "spec": {"type": "SCM", "scm": {
            "type": "GitHub", "server": url, "token": "ghp_x"}}}
        for target in (url, stack.base_url, "http://localhost:80", "http://169.254.169.254"):
            scm["spec"]["scm"]["server"] = target
            response = await a.http.post("/integrations", json=scm)
            assert response.status_code == 422, response.text
            assert "allowLocalAddresses" in response.json()["message"]

        current = expect(await a.http.get(f"/tenants/{a.name}"), 200)
        response = await a.http.put(f"/tenants/{a.name}", json={
            "metadata": current["metadata"],
            "spec": {**current["spec"], "allowLocalAddresses": True}})
        assert response.status_code == 403, response.text

        receivers = {"policy": "Always", "receivers": [{"type": "Webhook", "addresses": [url]}]}
        await apply_flow(a.http, "notify", "ci", [shell_stage("build", "true")])
        workflow = expect(await a.http.get("/projects/notify/workflows/ci"), 200)
        expect(await a.http.put("/projects/notify/workflows/ci", json={
            "metadata": {"name": "ci"},
            "spec": {**workflow["spec"], "notification": receivers}}), 200)
        first = await start_run(a.http, "notify", "ci")
        refused = await wait_notified(a.http, first["metadata"]["name"], url)
        assert refused["result"] == "Failed", refused
        assert "refused" in refused["message"] and "loopback" in refused["message"]
        assert seen == []

        await allow_local(stack, a.name)
        scm["spec"]["scm"]["server"] = url
        expect(await a.http.post("/integrations", json=scm), 201)
        listed = expect(await a.http.get("/integrations/ghe/scmrepos"), 200)
        assert [r["name"] for r in listed["items"]] == ["org/app"]
        second = await start_run(a.http, "notify", "ci")
        sent = await wait_notified(a.http, second["metadata"]["name"], url)
        assert sent["result"] == "Succeeded", sent
        assert any(line.startswith("POST") for line in seen)

        response = await b.http.post("/integrations", json=scm)
        assert response.status_code == 422, response.text


async def wait_notified(http: httpx.AsyncClient, run: str, address: str,
                        within: float = 90.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = expect(await http.get(f"{runs_path('notify', 'ci')}/{run}"), 200)
        notified = ((found.get("status") or {}).get("notifications") or {}).get(address)
        if notified:
            return notified
        assert loop.time() < deadline, f"run {run} never notified {address}: {found}"
        await asyncio.sleep(0.2)

