"""The workflow editor in a real Chromium on the live `cyclone up`: a stage added from a
template, stages connected by dragging, a cycle reported inline, the stage form, the diff,
and Save — then the stored workflow read back through the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.live_up import LiveUp
from support.ui import browser_sign_in, new_tenant, screenshot

from .test_dag_component import make_diamond

PROJECT = "editorweb"


@pytest.fixture(scope="module")
def tenant_api(ui_up: LiveUp, admin_api: httpx.Client) -> Any:
    """A tenant of this module with the diamond workflow: (token, API client)."""
    _, token = new_tenant(admin_api, "edit")
    with httpx.Client(base_url=ui_up.url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as api:
        make_diamond(api, PROJECT)
        yield token, api


def drag(page: Any, source: str, target: str) -> None:
    """Drag from `source`'s connection handle onto the `target` node, as a user does."""
    handle = page.locator(f'.dag-node[data-stage="{source}"] [data-dag-handle]').bounding_box()
    box = page.locator(f'.dag-node[data-stage="{target}"] .dag-box').bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
    with page.expect_navigation():
        page.mouse.up()


def depends_of(page: Any, stage: str) -> list[str]:
    return page.locator(f'tr[data-editor-stage="{stage}"] .editor-dep').evaluate_all(
        "els => els.map(e => e.firstChild.textContent.trim())")


def test_a_stage_from_a_template_is_connected_by_dragging_edited_and_saved(
        context: Any, ui_up: LiveUp, tenant_api: Any) -> None:
    token, api = tenant_api
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_sign_in(page, ui_up.url, token)
    page.goto(f"{ui_up.url}/projects/{PROJECT}/workflows/diamond/edit")

    page.select_option("#editor-template", "shell")
    page.fill("#editor-new-name", "lint")
    page.click("[data-editor-add]")
    lint = page.locator('.dag-node[data-stage="lint"]')
    assert lint.count() == 1 and lint.locator(".dag-note").text_content() == "new"
    assert page.locator("#f-image").input_value() == "{{ image }}"

    drag(page, "lint", "report")
    assert sorted(depends_of(page, "report")) == ["build-linux", "build-mac", "lint"]
    assert page.locator('.dag-edge[data-from="lint"][data-to="report"]').count() == 1

    drag(page, "report", "version")
    problem = page.locator('[data-editor-problem="version"]').inner_text()
    assert "cycle version -> report -> " in problem
    assert "invalid" in page.locator('.dag-node[data-stage="version"]').get_attribute("class")
    assert page.locator("[data-editor-save]").is_disabled()
    screenshot(page, "editor-cycle")
    with page.expect_navigation():
        page.click('[data-editor-disconnect="report>version"]')
    assert page.locator('[data-editor-problem="version"]').inner_text() == ""

    with page.expect_navigation():
        page.locator('.dag-node[data-stage="lint"] .dag-box').click()
    assert page.locator("#editor-stage-title").inner_text().startswith("Stage lint")
    page.fill("#f-image", "busybox:1.36")
    page.fill("#f-command", "sh\n-c\necho lint ok")
    page.fill("#f-arguments", "")
    page.click("[data-editor-apply]")
    diffs = page.locator("[data-diff]")
    assert diffs.evaluate_all("els => els.map(e => e.dataset.diff)") == [
        "Workflow diamond", "Stage lint (new)"]
    assert "+    - lint" in diffs.nth(0).inner_text()
    assert "+      - image: busybox:1.36" in diffs.nth(1).inner_text()
    screenshot(page, "editor")

    page.click("[data-editor-save]")
    page.wait_for_url("**/edit?saved=1")
    assert page.locator("[data-editor-saved]").count() == 1
    spec = api.get(f"/apis/v1alpha1/projects/{PROJECT}/workflows/diamond").json()["spec"]
    assert spec["stages"] == [
        {"name": "version"}, {"name": "build-linux", "depends": ["version"]},
        {"name": "build-mac", "depends": ["version"]},
        {"name": "report", "depends": ["build-linux", "build-mac", "lint"]},
        {"name": "lint"}]
    stage = api.get(f"/apis/v1alpha1/projects/{PROJECT}/stages/lint").json()
    assert stage["spec"]["pod"]["spec"]["containers"] == [
        {"image": "busybox:1.36", "command": ["sh", "-c", "echo lint ok"]}]
    assert errors == []
