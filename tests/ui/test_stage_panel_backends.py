"""The stage panel over a run the real engine ran, on the embedded cluster and on a real
kube-apiserver: the pod read back from the cluster (containers, exit code, pod YAML with the
secret env var hidden), outputs, the pod's Events, and the log search page."""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from engine.harness import BACKENDS
from engine.served import Served
from support.ui_app import served_ui_client

from cyclone.api import keys

API = "/apis/v1alpha1"
PROJECT = "stagepanel-be"
SECRET_VALUE = "backend-s3cret-for-the-panel"
RUNS = f"/projects/{PROJECT}/workflows/flow/workflowruns"
SCRIPT = "echo hello from the panel; printf 'answer:42\\n' > /cyclone/results/__result__; exit 4"


async def finished_run(api: httpx.AsyncClient) -> dict:
    answer = await api.post(RUNS, json={"metadata": {"name": "flow-1"}})
    assert answer.status_code == 201, answer.text
    async with asyncio.timeout(90):
        while True:
            run = (await api.get(f"{RUNS}/flow-1")).json()
            if ((run.get("status") or {}).get("overall") or {}).get("phase") in (
                    "Succeeded", "Failed"):
                return run
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_stage_panel_of_a_real_run(served: Served, backend: str,
                                             tmp_path: Path) -> None:
    namespace = keys.tenant_namespace(keys.DEFAULT_TENANT)
    await served.env.cluster.create({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "panel-creds", "namespace": namespace},
        "data": {"token": base64.b64encode(SECRET_VALUE.encode()).decode()}})
    async with (
        served_ui_client(served, tmp_path / "ui-server", logs=True) as ui,
        httpx.AsyncClient(base_url=served.base_url + API, timeout=30, headers={
            "Authorization": f"Bearer {served.admin_token}"}) as api,
    ):
        assert (await api.post("/projects", json={"metadata": {"name": PROJECT}})
                ).status_code == 201
        answer = await api.post(f"/projects/{PROJECT}/stages", json={
            "metadata": {"name": "work"}, "spec": {"pod": {"spec": {"containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c", SCRIPT],
                "env": [{"name": "TOKEN",
                         "value": f"${{secrets.{namespace}:panel-creds/data.token}}"}]}]}}}})
        assert answer.status_code == 201, answer.text
        assert (await api.post(f"/projects/{PROJECT}/workflows", json={
            "metadata": {"name": "flow"}, "spec": {"stages": [{"name": "work"}]}})
        ).status_code == 201
        run = await finished_run(api)
        pod = run["status"]["stages"]["work"]["pod"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await served.env.cluster.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod['name']}.panel", "namespace": pod["namespace"]},
            "involvedObject": {"kind": "Pod", "name": pod["name"],
                               "namespace": pod["namespace"]},
            "reason": "PanelCheck", "message": "seen by the panel", "type": "Normal",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1})

        base = f"/projects/{PROJECT}/workflows/flow/runs/flow-1"
        panel = await ui.get(f"{base}/stages/work", headers={"HX-Request": "true"})
        assert panel.status_code == 200, panel.text
        text = panel.text
        assert 'data-stage="work" data-phase="Failed"' in text
        container = re.search(r'<tr data-container="main">(.*?)</tr>', text, re.S)
        assert container is not None
        assert "busybox" in container.group(1) and '<td class="num">4</td>' in container.group(1)
        assert '<tr data-output="answer"><td class="mono">answer</td><td class="mono">42' in text
        assert "PanelCheck" in text and "seen by the panel" in text
        assert "- name: TOKEN\n      value: &#39;***&#39;" in text
        assert SECRET_VALUE not in text

        found = await ui.get(f"{base}/search", params={"q": "HELLO"},
                             headers={"HX-Request": "true"})
        assert found.status_code == 200
        if backend == "embedded":
            async with asyncio.timeout(30):
                while 'href="' + base + '/stages/work#L1"' not in found.text:
                    await asyncio.sleep(0.2)
                    found = await ui.get(f"{base}/search", params={"q": "HELLO"},
                                         headers={"HX-Request": "true"})
        else:
            assert "No line matches" in found.text
