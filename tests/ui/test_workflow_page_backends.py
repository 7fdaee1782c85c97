"""/apply and the "Run" form on the embedded cluster and on a real kube-apiserver: the
diamond example validated and applied through the pages, a run started from the workflow
page and run by the real engine, then shown in the page's history."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine.harness import BACKENDS
from engine.served import Served
from support.ui_app import served_ui_client

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diamond.yaml"
PROJECT = "wfpage-be"


class CountingCluster:
    """The served cluster, noting the kind of every list made through it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.listed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list(self, kind: Any, *args: Any, **kwargs: Any) -> Any:
        self.listed.append(kind.kind)
        return await self._inner.list(kind, *args, **kwargs)


@pytest.fixture
def cluster(served: Served) -> CountingCluster:
    return CountingCluster(served.env.cluster)


@pytest.fixture
async def ui(served: Served, cluster: CountingCluster, tmp_path
             ) -> AsyncIterator[httpx.AsyncClient]:
    """The server app with the pages mounted, on the served cluster; signed in as admin.
    `ui.csrf` is the session's CSRF token."""
    async with served_ui_client(served, tmp_path / "ui-server", cluster=cluster) as client:
        yield client


def diamond() -> str:
    text = EXAMPLE.read_text().replace("name: demo\n", f"name: {PROJECT}\n").replace(
        "project.cyclone.dev/name: demo", f"project.cyclone.dev/name: {PROJECT}")
    return text.split("---\napiVersion: cyclone.dev/v1alpha1\nkind: WorkflowRun")[0]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_diamond_applied_and_run_from_the_pages(served: Served,
                                                          ui: httpx.AsyncClient) -> None:
    """Also: a project named `.` or `..` is not found (on a kube-apiserver those names
    would be the path of the collection or of the namespace itself)."""
    headers = {"Authorization": f"Bearer {served.admin_token}"}
    for name in ("%2E", "%2E%2E"):
        answer = await served.http.get(f"/apis/v1alpha1/projects/{name}", headers=headers)
        assert answer.status_code == 404, answer.text
        assert answer.json()["reason"] == "NotFound"
        assert (await ui.get(f"/projects/{name}")).status_code == 404

    checked = await ui.post("/apply", data={"csrf": ui.csrf, "yaml": diamond(),
                                            "action": "validate"})
    assert checked.status_code == 200, checked.text
    assert checked.text.count('data-ok="true"') == 6
    assert f"projects/{PROJECT}\"" not in (await ui.get("/projects")).text
    applied = await ui.post("/apply", data={"csrf": ui.csrf, "yaml": diamond(),
                                            "action": "apply"})
    assert applied.status_code == 200, applied.text
    assert applied.text.count(">created<") == 6

    base = f"/projects/{PROJECT}/workflows/diamond"
    page = await ui.get(base)
    assert page.status_code == 200
    assert sorted(re.findall(r'data-stage="([^"]+)"', page.text)) == [
        "build-linux", "build-mac", "report", "version"]
    started = await ui.post(f"{base}/run", data={"csrf": ui.csrf, "alias": "from-ui"})
    assert started.status_code == 303, started.text
    assert started.headers["location"] == f"{base}/runs/from-ui"

    api = f"/apis/v1alpha1{base}/workflowruns/from-ui"
    async with asyncio.timeout(90):
        while True:
            run = (await served.http.get(api, headers=headers)).json()
            if ((run.get("status") or {}).get("overall") or {}).get("phase") == "Succeeded":
                break
            await asyncio.sleep(0.2)
    history = (await ui.get(base)).text
    assert re.search(r'<rect class="spark-bar phase-succeeded" data-run="from-ui"', history)
    assert "1/1" in history



@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_pages_find_runs_in_the_run_index_and_starting_a_run_lists_none(
        ui: httpx.AsyncClient, cluster: CountingCluster) -> None:
    """The workflow page, the projects pages, the comparison and the triage read the run
    index and the few runs they show, never a listing of every run; the Run form only
    creates the run."""
    applied = await ui.post("/apply", data={"csrf": ui.csrf, "yaml": diamond(),
                                            "action": "apply"})
    assert applied.status_code == 200, applied.text
    base = f"/projects/{PROJECT}/workflows/diamond"
    for alias in ("first", "second"):
        started = await ui.post(f"{base}/run", data={"csrf": ui.csrf, "alias": alias})
        assert started.status_code == 303, started.text
    async with asyncio.timeout(30):
        while True:
            rows = re.findall(r'<tr data-run="([^"]+)"', (await ui.get(base)).text)
            if rows == ["second", "first"]:
                break
            await asyncio.sleep(0.1)
    cluster.listed.clear()
    pages = {base: "second", "/projects": PROJECT, f"/projects/{PROJECT}": "second",
             f"{base}/compare?a=second&b=first": "first",
             f"{base}/runs/second/triage": "second"}
    for path, shown in pages.items():
        answer = await ui.get(path)
        assert answer.status_code == 200 and shown in answer.text, (path, answer.text[-500:])
    started = await ui.post(f"{base}/run", data={"csrf": ui.csrf, "alias": "third"})
    assert started.status_code == 303, started.text
    assert "WorkflowRun" not in cluster.listed, cluster.listed
