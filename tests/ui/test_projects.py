"""/projects and /projects/{p} against the live `cyclone up`: a tenant sees its own
projects only, and another tenant's project, workflow and run form are 404 as if they did
not exist."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.live_up import LiveUp
from support.ui import browser_sign_in, screenshot, signed_in_client

MANIFEST = """\
kind: Project
metadata: {name: projpage-own, annotations: {cyclone.dev/description: "Team <b>A</b>"}}
---
kind: Stage
metadata: {name: projpage-step, labels: {project.cyclone.dev/name: projpage-own}}
spec:
  pod:
    spec:
      containers: [{image: alpine:3.20, command: [sh, -c, "true"]}]
---
kind: Workflow
metadata: {name: ship, labels: {project.cyclone.dev/name: projpage-own}}
spec:
  stages: [{name: projpage-step}]
"""


@pytest.fixture(scope="module")
def owner(ui_up: LiveUp, admin_api: httpx.Client) -> tuple[str, str]:
    """A tenant holding project projpage-own, applied through its own /apply page."""
    from support.ui import new_tenant

    name, token = new_tenant(admin_api, "proj")
    with signed_in_client(ui_up.url, token) as client:
        answer = client.post("/apply", data={"csrf": client.csrf, "yaml": MANIFEST,
                                              "action": "apply"})
        assert answer.status_code == 200, answer.text
    return name, token


def test_a_tenant_lists_its_projects_with_their_workflows(context: Any, ui_up: LiveUp,
                                                          owner: tuple[str, str]) -> None:
    page = context.new_page()
    browser_sign_in(page, ui_up.url, owner[1])
    page.goto(f"{ui_up.url}/projects")
    rows = page.locator("tr[data-project]")
    assert rows.evaluate_all("els => els.map(e => e.dataset.project)") == ["projpage-own"]
    assert "Team <b>A</b>" in rows.first.inner_text()
    assert rows.first.locator("td.num").inner_text() == "1"
    screenshot(page, "projects")
    rows.first.locator("a").first.click()
    page.wait_for_url(f"{ui_up.url}/projects/projpage-own")
    assert page.locator('tr[data-workflow="ship"] [data-success]').inner_text() == "-"
    assert page.locator('[data-stage-object="projpage-step"]').count() == 1


def test_another_tenant_cannot_open_the_project_its_workflow_or_run_it(
        ui_up: LiveUp, owner: tuple[str, str], tenant: tuple[str, str],
        admin_api: httpx.Client) -> None:
    with signed_in_client(ui_up.url, tenant[1]) as client:
        assert "projpage-own" not in client.get("/projects").text
        for path in ("/projects/projpage-own", "/projects/projpage-own/workflows/ship",
                     "/projects/projpage-own/workflows/ship/revisions?resource=src"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "not found" in answer.text and "Traceback" not in answer.text, path
        refused = client.post("/projects/projpage-own/workflows/ship/run",
                              data={"csrf": client.csrf})
        assert refused.status_code == 404
    with httpx.Client(base_url=f"{ui_up.url}/apis/v1alpha1",
                      headers={"Authorization": f"Bearer {owner[1]}"}) as api:
        runs = api.get("/projects/projpage-own/workflows/ship/workflowruns").json()
        assert runs["metadata"]["total"] == 0


def test_an_unknown_project_is_a_404_page_not_a_500(ui_up: LiveUp) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        answer = client.get("/projects/no-such-project/workflows/nope")
        assert answer.status_code == 404
        assert "project &#39;no-such-project&#39; not found" in answer.text
