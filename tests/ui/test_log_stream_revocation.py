"""A stage's live log, followed by a page (cookie session) or by `logs -f` (bearer token),
stops flowing once the token behind it is revoked."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from support.live_up import LiveUp
from support.ui import new_tenant, signed_in_client

import cyclone.server.stream_auth as stream_auth

API = "/apis/v1alpha1"
PROJECT = "logrevoke"
TICKER = "for i in $(seq 1 600); do echo tick-$i; sleep 0.1; done"


@pytest.fixture
def quick_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_auth, "TOKEN_RECHECK_SECONDS", 0.5)


@pytest.fixture
def ticking(admin_api: httpx.Client) -> Iterator[tuple[str, str, str, str]]:
    """A tenant whose run's stage prints a line every 0.1 s: (tenant, token id, token, run)."""
    tenant, token = new_tenant(admin_api, "logrev")
    token_id = token.split(".")[2]
    api = httpx.Client(base_url=admin_api.base_url, timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    for path, body in (
            ("/projects", {"metadata": {"name": PROJECT}}),
            (f"/projects/{PROJECT}/stages", {"metadata": {"name": "ticker"}, "spec": {"pod": {
                "spec": {"containers": [{"image": "alpine:3.20",
                                         "command": ["sh", "-c", TICKER]}]}}}}),
            (f"/projects/{PROJECT}/workflows", {"metadata": {"name": "ticker"},
                                               "spec": {"stages": [{"name": "ticker"}]}})):
        answer = api.post(API + path, json=body)
        assert answer.status_code == 201, answer.text
    runs = f"{API}/projects/{PROJECT}/workflows/ticker/workflowruns"
    run = api.post(runs, json={}).json()["metadata"]["name"]
    yield tenant, token_id, token, run
    admin_api.put(f"{runs}/{run}/stop", headers={"X-Tenant": tenant})
    api.close()


def _lines_after_revoking(response: httpx.Response, revoke) -> tuple[int, float]:
    """Read until the first tick, revoke, then read to the end: (ticks after, seconds)."""
    lines = response.iter_lines()
    for line in lines:
        if "tick-" in line:
            break
    revoke()
    revoked_at = time.monotonic()
    after = sum(1 for line in lines if "tick-" in line)
    return after, time.monotonic() - revoked_at


def test_a_pages_live_log_ends_once_its_token_is_revoked(
        ui_up: LiveUp, admin_api: httpx.Client, ticking, quick_recheck) -> None:
    tenant, token_id, token, run = ticking
    url = f"/ui/streams/logs/{PROJECT}/ticker/{run}/ticker"
    with signed_in_client(ui_up.url, token) as client, client.stream(
            "GET", url, headers={"Accept": "text/event-stream"}, timeout=30) as response:
        assert response.status_code == 200
        after, seconds = _lines_after_revoking(response, lambda: admin_api.delete(
            f"{API}/tenants/{tenant}/tokens/{token_id}").raise_for_status())
    assert seconds < 10, "the stream went on after the token was revoked"
    assert after < 40


def test_logs_follow_over_the_api_ends_once_its_token_is_revoked(
        ui_up: LiveUp, admin_api: httpx.Client, ticking, quick_recheck) -> None:
    tenant, token_id, token, run = ticking
    url = (f"{ui_up.url}{API}/projects/{PROJECT}/workflows/ticker/workflowruns/{run}"
           f"/logstream/sse?stage=ticker")
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as response:
        assert response.status_code == 200
        after, seconds = _lines_after_revoking(response, lambda: admin_api.delete(
            f"{API}/tenants/{tenant}/tokens/{token_id}").raise_for_status())
    assert seconds < 10, "the stream went on after the token was revoked"
    assert after < 40
