"""The web UI from the attacker's side, on the embedded cluster and on a real kube-apiserver:
tenant `b`'s browser session gets 404 on every page, fragment, download, action and stream
of tenant `a`'s project, workflow and run, as if they did not exist; `a` sees them, and so
does the admin once it has switched to `a`.

A route not served (yet) answers the generic "page not found" for `a` too; such URLs are
collected and printed, not failed, so the list can name every page the UI is meant to have.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from support.ui import page_csrf

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

PROJECT = "uibound"
WORKFLOW = "ci"
STAGE = "hello"
NOT_SERVED = "page not found"


@contextlib.asynccontextmanager
async def signed_in(base_url: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client holding a session cookie of `token`; `client.csrf` is the
    session's CSRF token."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        form = await client.get("/login")
        answer = await client.post("/login", data={"token": token, "next": "/",
                                                   "csrf": page_csrf(form.text)})
        assert answer.status_code == 303, answer.text
        client.csrf = page_csrf((await client.get("/")).text)  # type: ignore[attr-defined]
        yield client


def token_of(http: httpx.AsyncClient) -> str:
    return http.headers["Authorization"].removeprefix("Bearer ")


def page_urls(run: str) -> list[str]:
    workflow = f"/projects/{PROJECT}/workflows/{WORKFLOW}"
    run_url = f"{workflow}/runs/{run}"
    return [
        f"/projects/{PROJECT}",
        workflow,
        f"{workflow}/edit",
        f"{workflow}/compare?a={run}&b={run}",
        run_url,
        f"{run_url}/stages/{STAGE}",
        f"{run_url}/stages/{STAGE}/log",
        f"{run_url}/search?q=marker",
        f"{run_url}/triage",
    ]


def hidden_urls(run: str) -> list[str]:
    """URLs that name more than `a` has (a Git resource, an artifact): 404 for `a` too."""
    workflow = f"/projects/{PROJECT}/workflows/{WORKFLOW}"
    return [f"{workflow}/revisions?resource=src",
            f"{workflow}/runs/{run}/artifacts/build.tgz"]


def stream_urls(run: str) -> list[str]:
    return [f"/ui/streams/runs/{PROJECT}/{WORKFLOW}/{run}",
            f"/ui/streams/logs/{PROJECT}/{WORKFLOW}/{run}/{STAGE}"]


def action_urls(run: str) -> list[str]:
    workflow = f"/projects/{PROJECT}/workflows/{WORKFLOW}"
    return [f"{workflow}/run", f"{workflow}/edit",
            *(f"{workflow}/runs/{run}/{action}"
              for action in ("stop", "pause", "resume", "retry", "rerun", "delete"))]


async def status_of(client: httpx.AsyncClient, url: str, **kwargs) -> tuple[int, str]:
    """The status and (for a stream: the start of) the body of a GET of `url`."""
    async with client.stream("GET", url, **kwargs) as response:
        if "text/event-stream" in response.headers.get("content-type", ""):
            return response.status_code, ""
        return response.status_code, (await response.aread()).decode(errors="replace")


async def seen_by_owner(client: httpx.AsyncClient, urls: list[str], who: str,
                        missing: set[str]) -> None:
    for url in urls:
        status, body = await status_of(client, url)
        if status == 404 and NOT_SERVED in body:
            missing.add(url)
            continue
        assert status == 200, (who, url, status, body[:300])


async def refused(client: httpx.AsyncClient, url: str, marker: str, *,
                  method: str = "GET", **kwargs) -> None:
    if method == "GET":
        status, body = await status_of(client, url, **kwargs)
    else:
        answer = await client.request(method, url, **kwargs)
        status, body = answer.status_code, answer.text
    assert status in (404, 405) if method != "GET" else status == 404, (url, status, body[:300])
    assert marker not in body, (url, body[:300])
    assert "Traceback" not in body


async def test_another_tenants_session_finds_none_of_a_tenants_pages_actions_or_streams(
        stack):
    marker = f"marker-of-a-{secrets.token_hex(4)}"
    await apply_flow(stack.a.http, PROJECT, WORKFLOW, [shell_stage(STAGE, f"echo {marker}")])
    run = (await start_run(stack.a.http, PROJECT, WORKFLOW))["metadata"]["name"]
    before = await wait_run(stack.a.http, PROJECT, WORKFLOW, run)
    missing: set[str] = set()
    api_stream = f"/apis/v1alpha1{runs_path(PROJECT, WORKFLOW)}/{run}/stream"

    async with signed_in(stack.base_url, token_of(stack.b.http)) as b:
        for url in page_urls(run) + hidden_urls(run) + stream_urls(run):
            await refused(b, url, marker)
        for url in page_urls(run)[5:]:
            await refused(b, url, marker, headers={"HX-Request": "true"})
        for url in action_urls(run):
            await refused(b, url, marker, method="POST", data={"csrf": b.csrf})
        await refused(b, action_urls(run)[-1], marker, method="POST",
                      headers={"X-CSRF-Token": b.csrf, "HX-Request": "true"})
        await refused(b, api_stream, marker,
                      headers={"Authorization": f"Bearer {token_of(stack.b.http)}"})

    # b makes a project and workflow of the same names: a's run is still nowhere to b.
    await apply_flow(stack.b.http, PROJECT, WORKFLOW, [shell_stage(STAGE, "echo b")])
    async with signed_in(stack.base_url, token_of(stack.b.http)) as b:
        for url in page_urls(run)[:3]:
            status, body = await status_of(b, url)
            assert status in (200, 404) and run not in body and marker not in body, url
        for url in page_urls(run)[3:] + stream_urls(run):
            await refused(b, url, marker)
        for url in action_urls(run)[2:]:
            await refused(b, url, marker, method="POST", data={"csrf": b.csrf})
        await refused(b, api_stream, marker,
                      headers={"Authorization": f"Bearer {token_of(stack.b.http)}"})

    after = expect(await stack.a.http.get(f"{runs_path(PROJECT, WORKFLOW)}/{run}"), 200)
    assert after["spec"] == before["spec"]
    listed = expect(await stack.a.http.get(runs_path(PROJECT, WORKFLOW)), 200)
    assert [item["metadata"]["name"] for item in listed["items"]] == [run]

    async with signed_in(stack.base_url, token_of(stack.a.http)) as a:
        await seen_by_owner(a, page_urls(run) + stream_urls(run), "a", missing)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as api:
        status, _ = await status_of(api, api_stream, headers={
            "Authorization": f"Bearer {token_of(stack.a.http)}"})
        assert status == 200

    async with signed_in(stack.base_url, token_of(stack.admin)) as admin:
        await refused(admin, page_urls(run)[0], marker)
        switched = await admin.post("/tenant", data={"tenant": stack.a.name, "next": "/",
                                                     "csrf": admin.csrf})
        assert switched.status_code == 303, switched.text
        await seen_by_owner(admin, page_urls(run) + stream_urls(run), "admin", missing)

    if missing:
        print(f"UI routes not served yet ({stack.backend}): {sorted(missing)}")
    assert len(missing) < len(page_urls(run) + stream_urls(run))


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
async def test_a_run_stream_ends_when_its_token_is_revoked(stack):
    await apply_flow(stack.a.http, PROJECT, "slow", [shell_stage("nap", "sleep 60")])
    run = (await start_run(stack.a.http, PROJECT, "slow"))["metadata"]["name"]
    token = token_of(stack.a.http)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as api, api.stream(
            "GET", f"/apis/v1alpha1{runs_path(PROJECT, 'slow')}/{run}/stream",
            params={"heartbeat": 0.5},
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("id: ")
        token_id = token.split(".")[2]
        expect(await stack.admin.delete(f"/tenants/{stack.a.name}/tokens/{token_id}"), 204)
        async with asyncio.timeout(20):
            rest = [line async for line in lines]
    assert not [line for line in rest if line.startswith("event: end")]
    expect(await stack.admin.put(f"{runs_path(PROJECT, 'slow')}/{run}/stop",
                                 headers={"X-Tenant": stack.a.name}), 200)
