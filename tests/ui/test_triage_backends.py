"""The triage fragment and the compare page over runs the real engine ran, on the embedded
cluster and on a real kube-apiserver: the pages read the run, its history and its stored
log through the server's own functions."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from engine.harness import BACKENDS
from engine.served import Served
from support.ui_app import served_ui_client

API = "/apis/v1alpha1"
PROJECT = "triage-be"
RUNS = f"/projects/{PROJECT}/workflows/gate/workflowruns"
SCRIPT = ('echo preparing; echo checking; '
          'if [ "{{ FAIL }}" = yes ]; then echo "error: the gate said no"; echo cleanup; '
          'exit 3; fi; echo passed')


async def run_to_end(api: httpx.AsyncClient, fail: str) -> str:
    answer = await api.post(RUNS, json={"spec": {"stages": [
        {"name": "gate", "parameters": [{"name": "FAIL", "value": fail}]}]}})
    assert answer.status_code == 201, answer.text
    name = answer.json()["metadata"]["name"]
    async with asyncio.timeout(90):
        while True:
            run = (await api.get(f"{RUNS}/{name}")).json()
            if ((run.get("status") or {}).get("overall") or {}).get("phase") in (
                    "Succeeded", "Failed"):
                return name
            await asyncio.sleep(0.2)


async def logs_stored(ui: httpx.AsyncClient, token: str, run: str) -> None:
    async with asyncio.timeout(30):
        while True:
            answer = await ui.get(f"{API}{RUNS}/{run}/logs", params={"stage": "gate"},
                                  headers={"Authorization": f"Bearer {token}"})
            if "error: the gate said no" in answer.text:
                return
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_triage_and_comparison_of_real_runs(served: Served, backend: str,
                                                      tmp_path: Path) -> None:
    """On the real kube-apiserver the harness's node agent serves no kubelet log endpoint,
    so no log is collected there and the card says so; the embedded run checks the log
    excerpt."""
    async with (
        served_ui_client(served, tmp_path / "ui-server", logs=True) as ui,
        httpx.AsyncClient(base_url=served.base_url + API, timeout=30, headers={
            "Authorization": f"Bearer {served.admin_token}"}) as api,
    ):
        assert (await api.post("/projects", json={"metadata": {"name": PROJECT}})
                ).status_code == 201
        answer = await api.post(f"/projects/{PROJECT}/stages", json={
            "metadata": {"name": "gate"}, "spec": {"pod": {
                "inputs": {"arguments": [{"name": "FAIL", "value": "no"}]},
                "spec": {"containers": [{"name": "main", "image": "busybox",
                                         "command": ["sh", "-c", SCRIPT]}]}}}})
        assert answer.status_code == 201, answer.text
        assert (await api.post(f"/projects/{PROJECT}/workflows", json={
            "metadata": {"name": "gate"}, "spec": {"stages": [{"name": "gate"}]}})
        ).status_code == 201
        green = await run_to_end(api, "no")
        stage = (await api.get(f"/projects/{PROJECT}/stages/gate")).json()
        stage["spec"]["pod"]["spec"]["containers"][0]["command"][2] = "echo v2; " + SCRIPT
        assert (await api.put(f"/projects/{PROJECT}/stages/gate", json=stage)
                ).status_code == 200
        red = await run_to_end(api, "yes")
        if backend == "embedded":
            await logs_stored(ui, served.admin_token, red)
        base = f"/projects/{PROJECT}/workflows/gate"
        card = await ui.get(f"{base}/runs/{red}/triage", headers={"HX-Request": "true"})
        assert card.status_code == 200, card.text
        assert "<html" not in card.text
        text = card.text
        assert "Failed at" in text and ">gate</a>: Error (exit code 3)" in text
        if backend == "embedded":
            line = re.search(r'href="[^"]*/stages/gate#L(\d+)"[^>]*>\d+</a>'
                             r'<span class="line-text">error: the gate said no', text)
            assert line is not None and int(line.group(1)) >= 3
        else:
            assert "The stage has no stored log." in text
        assert f">{green}</a>" in text
        assert "<code>gate/FAIL</code>" in text and "<del>no</del> → <ins>yes</ins>" in text
        assert "Stage <code>gate</code> spec changed" in text
        assert re.search(r"<span class=\"add\">\+ +&#34;echo v2; echo preparing", text), text

        page = await ui.get(f"{base}/runs/{red}/triage")
        assert page.status_code == 200 and "<html" in page.text and "Triage of" in page.text

        compared = await ui.get(f"{base}/compare", params={"a": red})
        assert compared.status_code == 200
        row = re.search(r'<tr data-stage="gate"[^>]*>(.*?)</tr>', compared.text, re.S)
        assert row is not None
        assert 'data-phase="Succeeded"' in row.group(1) and 'data-phase="Failed"' in row.group(1)
        assert compared.text.index(f">{green}</a>") < compared.text.index(f">{red}</a>")
        assert "<code>gate/FAIL</code>" in compared.text

        missing = await ui.get(f"{base}/compare", params={"a": red, "b": "no-such-run"})
        assert missing.status_code == 404
        assert "workflowrun &#39;no-such-run&#39; not found" in missing.text
