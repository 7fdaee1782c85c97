"""A stage a retry reused shows, and downloads, the log of the run that ran it."""

from __future__ import annotations

import time

import httpx
from support.live_up import LiveUp
from support.ui import new_tenant, signed_in_client

API = "/apis/v1alpha1"
PROJECT = "reused"
RUNS = f"{API}/projects/{PROJECT}/workflows/pair/workflowruns"


def _stage(api: httpx.Client, name: str, script: str, create: bool = True) -> None:
    body = {"metadata": {"name": name}, "spec": {"pod": {"spec": {"containers": [
        {"image": "alpine:3.20", "command": ["sh", "-c", script]}]}}}}
    if create:
        answer = api.post(f"{API}/projects/{PROJECT}/stages", json=body)
    else:
        body["metadata"] = api.get(f"{API}/projects/{PROJECT}/stages/{name}").json()["metadata"]
        answer = api.put(f"{API}/projects/{PROJECT}/stages/{name}", json=body)
    assert answer.status_code in (200, 201), answer.text


def _ended(api: httpx.Client, run: str) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        phase = ((api.get(f"{RUNS}/{run}").json().get("status") or {}).get("overall")
                 or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Cancelled"):
            return phase
        time.sleep(0.2)
    raise AssertionError(f"run {run} did not end")


def test_a_reused_stage_shows_the_log_of_the_run_that_ran_it(
        ui_up: LiveUp, admin_api: httpx.Client) -> None:
    _, token = new_tenant(admin_api, "reuse", open_cluster=True)
    with httpx.Client(base_url=ui_up.url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.post(f"{API}/projects", json={"metadata": {"name": PROJECT}}
                        ).status_code == 201
        _stage(api, "make", "echo made-it-here")
        _stage(api, "check", "echo checking; exit 3")
        assert api.post(f"{API}/projects/{PROJECT}/workflows", json={
            "metadata": {"name": "pair"},
            "spec": {"stages": [{"name": "make"}, {"name": "check", "depends": ["make"]}]},
        }).status_code == 201
        first = api.post(RUNS, json={}).json()["metadata"]["name"]
        assert _ended(api, first) == "Failed"
        _stage(api, "check", "echo fixed", create=False)
        retry = api.post(f"{RUNS}/{first}/retry").json()["metadata"]["name"]
        assert _ended(api, retry) == "Succeeded"

    with signed_in_client(ui_up.url, token) as ui:
        base = f"/projects/{PROJECT}/workflows/pair/runs"
        panel = ui.get(f"{base}/{retry}/stages/make", headers={"HX-Request": "true"})
        assert panel.status_code == 200
        assert f'data-reused-from="{first}"' in panel.text
        assert f'data-log-url="{base}/{first}/stages/make/log"' in panel.text
        deadline = time.monotonic() + 30
        while "made-it-here" not in (log := ui.get(f"{base}/{first}/stages/make/log")).text:
            assert time.monotonic() < deadline, log.text
            time.sleep(0.2)
        ran_here = ui.get(f"{base}/{retry}/stages/check", headers={"HX-Request": "true"})
        assert "data-reused-from" not in ran_here.text
