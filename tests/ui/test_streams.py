"""The run stream of the pages (`/ui/streams/runs/…`), signed in by the session cookie, on the
live `cyclone up`: its events, its refusals, its end when the session's token is revoked,
and a real Chromium's EventSource following it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from support.sse import COMMENT, sse_events
from support.ui import expect, signed_in_client

API = "/apis/v1alpha1"
PROJECT = "streams-ui"
SHORT = "st-short"
LONG = "st-long"


def apply_flow(api: httpx.Client, workflow: str, script: str) -> None:
    expect(api.post(f"{API}/projects", json={"metadata": {"name": PROJECT}}), 201)
    expect(api.post(f"{API}/projects/{PROJECT}/stages", json={
        "metadata": {"name": workflow}, "spec": {"pod": {"spec": {"containers": [
            {"image": "alpine:3.20", "command": ["sh", "-c", script]}]}}}}), 201)
    expect(api.post(f"{API}/projects/{PROJECT}/workflows", json={
        "metadata": {"name": workflow}, "spec": {"stages": [{"name": workflow}]}}), 201)


def start_run(api: httpx.Client, workflow: str) -> str:
    answer = expect(api.post(f"{API}/projects/{PROJECT}/workflows/{workflow}/workflowruns",
                             json={}), 201)
    return answer["metadata"]["name"]


def stream_url(workflow: str, run: str) -> str:
    return f"/ui/streams/runs/{PROJECT}/{workflow}/{run}"


def events(response: httpx.Response) -> Iterator[tuple[str, dict | None]]:
    """(event name, data) of an SSE response; a comment is ("comment", None)."""
    for event in sse_events(response.iter_lines()):
        yield event.name, None if event.name == COMMENT else event.json()


@pytest.fixture(scope="module")
def short_flow(admin_api: httpx.Client) -> str:
    apply_flow(admin_api, SHORT, "sleep 2; echo streamed")
    return SHORT


def test_a_signed_in_page_stream_follows_a_run_to_its_end(ui_up, admin_api, short_flow):
    run = start_run(admin_api, short_flow)
    with signed_in_client(ui_up.url, ui_up.token) as client, client.stream(
            "GET", stream_url(short_flow, run),
            headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        seen = [(name, data) for name, data in events(response) if name != "comment"]
    assert seen[0][0] == "snapshot" and seen[0][1]["metadata"]["name"] == run
    assert seen[-1] == ("end", {"reason": "finished", "phase": "Succeeded"})
    stages = {stage: entry["status"]["phase"] for name, data in seen if name == "change"
              for stage, entry in data["stages"].items()}
    assert stages == {short_flow: "Succeeded"}, seen


def test_a_page_stream_needs_a_session_and_an_existing_run(ui_up, admin_api, short_flow):
    run = start_run(admin_api, short_flow)
    with httpx.Client(base_url=ui_up.url, timeout=10) as anonymous:
        answer = anonymous.get(stream_url(short_flow, run),
                               headers={"Accept": "text/event-stream"})
        assert answer.status_code == 401
    with signed_in_client(ui_up.url, ui_up.token) as client:
        answer = client.get(stream_url(short_flow, "no-such-run"),
                            headers={"Accept": "text/event-stream"})
        assert answer.status_code == 404
        assert "workflowrun &#39;no-such-run&#39; not found" in answer.text
        assert client.get(f"/ui/streams/runs/{PROJECT}/no-such-flow/{run}").status_code == 404


def tenant_api(ui_up, token: str) -> httpx.Client:
    return httpx.Client(base_url=ui_up.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def test_revoking_the_sessions_token_ends_its_page_stream(ui_up, admin_api, tenant):
    name, token = tenant
    with tenant_api(ui_up, token) as api:
        expect(api.post(f"{API}/integrations", json={
            "metadata": {"name": "cluster"},
            "spec": {"type": "Cluster", "cluster": {"isControlCluster": True}}}), 201)
        expect(api.put(f"{API}/integrations/cluster/opencluster"), 200)
        apply_flow(api, LONG, "sleep 60")
        run = start_run(api, LONG)
        with signed_in_client(ui_up.url, token) as client:
            with client.stream("GET", stream_url(LONG, run), params={"heartbeat": 0.5},
                               headers={"Accept": "text/event-stream"}) as response:
                seen = events(response)
                assert next(seen)[0] == "snapshot"
                expect(admin_api.delete(
                    f"{API}/tenants/{name}/tokens/{token.split('.')[2]}"), 204)
                started = time.monotonic()
                rest = [event for event, _ in seen if event != "comment"]
                assert time.monotonic() - started < 10
            assert "end" not in rest
            answer = client.get(stream_url(LONG, run), headers={"Accept": "text/event-stream"})
            assert answer.status_code == 401
    expect(admin_api.put(f"{API}/projects/{PROJECT}/workflows/{LONG}/workflowruns/{run}/stop",
                         headers={"X-Tenant": name}), 200)


def test_a_browsers_event_source_follows_the_page_stream(ui_up, admin_api, admin_page,
                                                         short_flow):
    run = start_run(admin_api, short_flow)
    names = admin_page.evaluate("""url => new Promise((resolve, reject) => {
        const seen = [];
        const source = new EventSource(url);
        for (const name of ["snapshot", "change"]) {
            source.addEventListener(name, () => seen.push(name));
        }
        source.addEventListener("end", event => {
            seen.push("end:" + JSON.parse(event.data).phase);
            source.close();
            resolve(seen);
        });
        source.onerror = () => { source.close(); reject(new Error("stream failed")); };
        setTimeout(() => { source.close(); reject(new Error("no end: " + seen)); }, 60000);
    })""", stream_url(short_flow, run))
    assert names[0] == "snapshot" and names[-1] == "end:Succeeded" and "change" in names
