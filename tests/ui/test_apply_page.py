"""/apply in a real Chromium against the live `cyclone up`: the diamond example pasted,
validated with the server's dry run, applied, then found under Projects; bad objects are
reported per document with their fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from support.live_up import LiveUp
from support.ui import browser_sign_in, screenshot, signed_in_client

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diamond.yaml"
PROJECT = "applypage-diamond"


def diamond(project: str, tenant: str = "system") -> str:
    """The diamond example in `project` of `tenant` (stage and workflow names are the
    tenant's: a tenant of its own keeps them from other modules' diamonds)."""
    text = EXAMPLE.read_text()
    return (text.replace("name: demo\n", f"name: {project}\n")
            .replace("project.cyclone.dev/name: demo", f"project.cyclone.dev/name: {project}")
            .replace("namespace: cyclone-system", f"namespace: cyclone-{tenant}"))


def test_the_diamond_example_is_validated_applied_and_listed(
        context: Any, ui_up: LiveUp, tenant: tuple[str, str]) -> None:
    name, token = tenant
    page = context.new_page()
    browser_sign_in(page, ui_up.url, token)
    api = httpx.Client(base_url=ui_up.url, headers={"Authorization": f"Bearer {token}"})
    page.goto(f"{ui_up.url}/apply")
    page.fill("textarea[name=yaml]", diamond(PROJECT, name))
    page.click("button[value=validate]")
    rows = page.locator(".apply-results tr[data-doc]")
    assert rows.count() == 7
    assert page.locator('.apply-results tr[data-ok="false"]').count() == 0, \
        page.locator(".apply-results").inner_text()
    assert "every object is valid" in page.locator(".apply-results h2").inner_text()
    assert "would be created" in rows.nth(0).inner_text()
    assert api.get(f"/apis/v1alpha1/projects/{PROJECT}").status_code == 404
    screenshot(page, "apply-validated")

    page.click("button[value=apply]")
    assert page.locator('.apply-results tr[data-ok="false"]').count() == 0, \
        page.locator(".apply-results").inner_text()
    assert page.locator(".apply-results").inner_text().count("created") == 7
    screenshot(page, "apply-applied")

    page.goto(f"{ui_up.url}/projects")
    page.click(f'tr[data-project="{PROJECT}"] a')
    page.wait_for_url(f"{ui_up.url}/projects/{PROJECT}")
    assert page.locator('tr[data-workflow="diamond"]').count() == 1
    screenshot(page, "project")
    page.click('tr[data-workflow="diamond"] a >> nth=0')
    page.wait_for_url(f"{ui_up.url}/projects/{PROJECT}/workflows/diamond")
    stages = page.locator("#workflow-dag [data-stage]")
    assert sorted(stages.evaluate_all("els => els.map(e => e.dataset.stage)")) == [
        "build-linux", "build-mac", "report", "version"]
    bar = page.locator('svg.sparkline rect[data-run="diamond-run-1"]')
    assert bar.count() == 1
    screenshot(page, "workflow-history")

    page.goto(f"{ui_up.url}/apply")
    page.fill("textarea[name=yaml]", diamond(PROJECT, name))
    page.click("button[value=apply]")
    text = page.locator(".apply-results").inner_text()
    assert text.count("configured") == 6 and "unchanged" in text


def test_bad_objects_are_reported_per_document_with_their_fields(ui_up: LiveUp) -> None:
    manifest = """\
kind: Project
metadata: {name: applypage-bad}
---
kind: Stage
metadata: {name: broken, labels: {project.cyclone.dev/name: applypage-bad}}
spec:
  pod:
    spec: {containers: [{image: alpine, comand: [sh]}]}
---
kind: Workflow
metadata: {name: wf, labels: {project.cyclone.dev/name: applypage-bad}}
spec:
  stages: [{name: nowhere}]
"""
    with signed_in_client(ui_up.url, ui_up.token) as client:
        answer = client.post("/apply", data={"csrf": client.csrf, "yaml": manifest,
                                              "action": "validate"})
        assert answer.status_code == 422
        assert 'data-doc="1" data-ok="true"' in answer.text
        broken = answer.text.split('data-doc="2"', 1)[1].split("</tr>", 1)[0]
        assert 'data-ok="false"' in broken and "comand" in broken
        missing = answer.text.split('data-doc="3"', 1)[1].split("</tr>", 1)[0]
        assert 'data-ok="false"' in missing and "nowhere" in missing
        assert client.get("/projects/applypage-bad").status_code == 404

        unreadable = client.post("/apply", data={"csrf": client.csrf, "yaml": "kind: [",
                                                  "action": "apply"})
        assert unreadable.status_code == 422
        assert "not valid YAML" in unreadable.text and "Traceback" not in unreadable.text


def test_an_uploaded_file_is_applied_like_pasted_text(ui_up: LiveUp,
                                                      admin_api: httpx.Client) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        answer = client.post("/apply", data={"csrf": client.csrf, "action": "apply"},
                             files={"file": ("p.yaml", b"kind: Project\n"
                                             b"metadata: {name: applypage-upload}\n")})
        assert answer.status_code == 200, answer.text
    assert admin_api.get("/apis/v1alpha1/projects/applypage-upload").status_code == 200
