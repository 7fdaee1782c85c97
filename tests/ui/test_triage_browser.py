"""The triage card and the run comparison in a real Chromium against the live `cyclone up`:
a workflow whose gate stage fails when its parameter says so, run green then red."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp
from support.ui import screenshot, signed_in_client

PROJECT = "insights-ui"
WORKFLOW = "gate"
PREPARE = "tb-prepare"
"""Stage names are unique per tenant: this module's own first stage."""
API_RUNS = f"/apis/v1alpha1/projects/{PROJECT}/workflows/{WORKFLOW}/workflowruns"
PAGES = f"/projects/{PROJECT}/workflows/{WORKFLOW}"
SCRIPT = ('echo preparing; echo checking the gate; '
          'if [ "{{ FAIL }}" = yes ]; then echo "error: the gate said no"; echo cleanup; '
          'exit 3; fi; echo passed')


def run_to_end(api: httpx.Client, fail: str) -> str:
    answer = api.post(API_RUNS, json={"spec": {"stages": [
        {"name": "gate", "parameters": [{"name": "FAIL", "value": fail}]}]}})
    assert answer.status_code == 201, answer.text
    name = answer.json()["metadata"]["name"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run = api.get(f"{API_RUNS}/{name}").json()
        if ((run.get("status") or {}).get("overall") or {}).get("phase") in (
                "Succeeded", "Failed"):
            return name
        time.sleep(0.2)
    raise AssertionError(f"run {name} did not end")


def wait_for_log(api: httpx.Client, run: str, text: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if text in api.get(f"{API_RUNS}/{run}/logs", params={"stage": "gate"}).text:
            return
        time.sleep(0.2)
    raise AssertionError(f"the log of {run} never showed {text!r}")


@pytest.fixture(scope="module")
def green_and_red(admin_api: httpx.Client) -> tuple[str, str]:
    """A green run (FAIL=no) and then a red one (FAIL=yes) of a tb-prepare → gate workflow."""
    base = "/apis/v1alpha1/projects"
    assert admin_api.post(base, json={"metadata": {"name": PROJECT}}).status_code == 201
    for name, script in ((PREPARE, "echo ready"), ("gate", SCRIPT)):
        pod: dict[str, Any] = {"spec": {"containers": [
            {"name": "main", "image": "alpine:3.20", "command": ["sh", "-c", script]}]}}
        if name == "gate":
            pod["inputs"] = {"arguments": [{"name": "FAIL", "value": "no"}]}
        answer = admin_api.post(f"{base}/{PROJECT}/stages",
                                json={"metadata": {"name": name}, "spec": {"pod": pod}})
        assert answer.status_code == 201, answer.text
    answer = admin_api.post(f"{base}/{PROJECT}/workflows", json={
        "metadata": {"name": WORKFLOW},
        "spec": {"stages": [{"name": PREPARE}, {"name": "gate", "depends": [PREPARE]}]}})
    assert answer.status_code == 201, answer.text
    green = run_to_end(admin_api, "no")
    red = run_to_end(admin_api, "yes")
    wait_for_log(admin_api, red, "error: the gate said no")
    return green, red


def test_a_failed_runs_triage_card_names_the_stage_error_line_and_parameter_change(
        admin_page: Any, ui_up: LiveUp, green_and_red: tuple[str, str]) -> None:
    green, red = green_and_red
    admin_page.goto(f"{ui_up.url}{PAGES}/runs/{red}")
    card = admin_page.locator("#triage [data-triage]")
    card.wait_for()
    assert re.fullmatch(r"Failed at gate: Error \(exit code 3\)",
                        card.locator("[data-triage-headline]").inner_text().strip())
    excerpt = card.locator("[data-triage-log] li.match")
    assert excerpt.count() == 1
    assert "error: the gate said no" in excerpt.inner_text()
    link = excerpt.locator("a.line-no")
    number = link.inner_text()
    assert link.get_attribute("href").endswith(f"/runs/{red}/stages/gate#L{number}")
    assert card.locator("[data-triage-green]").inner_text() == green
    change = card.locator('[data-change="parameter"]')
    assert change.count() == 1
    assert change.inner_text() == "Parameter gate/FAIL: no → yes"
    screenshot(admin_page, "triage")

    admin_page.goto(f"{ui_up.url}{PAGES}/runs/{red}/triage")
    assert admin_page.locator("h1").inner_text().startswith(f"Triage of {red}")
    assert admin_page.locator("[data-triage-log] li.match").count() == 1


def test_comparing_the_red_run_with_the_last_green_one(admin_page: Any, ui_up: LiveUp,
                                                       green_and_red: tuple[str, str]) -> None:
    green, red = green_and_red
    errors: list[str] = []
    admin_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
                  else None)
    admin_page.goto(f"{ui_up.url}{PAGES}/runs/{red}/triage")
    admin_page.click("text=Compare with")
    admin_page.wait_for_url(f"{ui_up.url}{PAGES}/compare?a={red}")
    table = admin_page.locator("[data-compare-table]")
    assert table.locator('[data-compare-run="older"]').inner_text() == green
    assert table.locator('[data-compare-run="newer"]').inner_text() == red
    gate = table.locator('tr[data-stage="gate"]')
    assert gate.locator('[data-side="older"]').inner_text() == "Succeeded"
    assert gate.locator('[data-side="newer"]').inner_text() == "Failed"
    cells = gate.locator("td.num").all_inner_texts()
    assert len(cells) == 3 and all(re.fullmatch(r"[0-9.]+s", c) for c in cells[:2])
    prepare = table.locator(f'tr[data-stage="{PREPARE}"]')
    assert prepare.locator('[data-side="newer"]').inner_text() == "Succeeded"
    assert admin_page.locator("[data-compare-parameters]").inner_text() == "gate/FAIL: no → yes"
    screenshot(admin_page, "compare")

    admin_page.select_option("#compare-a", green)
    admin_page.select_option("#compare-b", green)
    admin_page.click(".compare-pickers button[type=submit]")
    admin_page.wait_for_url(re.compile(rf".*a={green}&b={green}"))
    assert admin_page.locator("[data-compare-parameters]").count() == 0
    assert "Same parameters." in admin_page.locator(".compare-diffs").inner_text()
    assert errors == []


def test_another_tenant_gets_404_for_the_triage_and_the_comparison(
        ui_up: LiveUp, tenant: tuple[str, str], green_and_red: tuple[str, str]) -> None:
    green, red = green_and_red
    with signed_in_client(ui_up.url, tenant[1]) as client:
        for path in (f"{PAGES}/runs/{red}/triage", f"{PAGES}/compare?a={red}&b={green}",
                     f"{PAGES}/compare"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert red not in answer.text and "Traceback" not in answer.text
            fragment = client.get(path, headers={"HX-Request": "true"})
            assert fragment.status_code == 404, path
    with signed_in_client(ui_up.url, ui_up.token) as client:
        assert client.get(f"{PAGES}/runs/{red}/triage").status_code == 200
