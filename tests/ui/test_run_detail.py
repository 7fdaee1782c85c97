"""The run page in a real Chromium against the live `cyclone up`: the DAG, header and stage
table going live to the end without a reload, a notification when a watched run ends, the
stage panel and timeline, and the actions — stop, retry, delete with its confirmation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp, cli_ok
from support.ui import expect, screenshot, signed_in_client

API = "/apis/v1alpha1"
PROJECT = "run-detail-ui"
PREPARE, SLEEPER, FLAKY, SLEEPY = "rd-prepare", "rd-sleeper", "rd-flaky", "rd-sleepy"
"""Stage and workflow names are unique per tenant: these are this module's own."""
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diamond.yaml"
TIMEOUT = 60_000
SPY_NOTIFICATIONS = """
window.__notified = [];
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = new Proxy(Real, {
    construct(target, args) { window.__notified.push(args[0]); return new target(...args); }
  });
}
"""


def runs_path(workflow: str) -> str:
    return f"{API}/projects/{PROJECT}/workflows/{workflow}/workflowruns"


def page_url(ui_up: LiveUp, workflow: str, run: str) -> str:
    return f"{ui_up.url}/projects/{PROJECT}/workflows/{workflow}/runs/{run}"


def put_stage(api: httpx.Client, name: str, script: str) -> None:
    body = {"metadata": {"name": name}, "spec": {"pod": {"spec": {"containers": [
        {"image": "alpine:3.20", "command": ["sh", "-c", script]}]}}}}
    path = f"{API}/projects/{PROJECT}/stages"
    if api.get(f"{path}/{name}").status_code == 404:
        expect(api.post(path, json=body), 201)
    else:
        expect(api.put(f"{path}/{name}", json=body), 200)


def put_workflow(api: httpx.Client, name: str, stages: list[dict]) -> None:
    path = f"{API}/projects/{PROJECT}/workflows"
    body = {"metadata": {"name": name}, "spec": {"stages": stages}}
    if api.get(f"{path}/{name}").status_code == 404:
        expect(api.post(path, json=body), 201)
    else:
        expect(api.put(f"{path}/{name}", json=body), 200)


def start(api: httpx.Client, workflow: str) -> str:
    return expect(api.post(runs_path(workflow), json={}), 201)["metadata"]["name"]


def wait_phase(api: httpx.Client, workflow: str, run: str, phases: set[str]) -> None:
    deadline = time.monotonic() + TIMEOUT / 1000
    while time.monotonic() < deadline:
        got = expect(api.get(f"{runs_path(workflow)}/{run}"), 200)
        if ((got.get("status") or {}).get("overall") or {}).get("phase") in phases:
            return
        time.sleep(0.3)
    raise AssertionError(f"run {run} never reached {phases}")


def wait_gone(api: httpx.Client, path: str) -> None:
    """The engine removes a deleted run's pods and data before the run goes."""
    deadline = time.monotonic() + TIMEOUT / 1000
    while api.get(path).status_code != 404:
        assert time.monotonic() < deadline, f"{path} is still there"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def diamond(ui_up: LiveUp, admin_api: httpx.Client, tmp_path_factory) -> str:
    """The diamond example in this module's project; its first stage waits a little, so a
    page opened just after the start sees the run go on."""
    docs = EXAMPLE.read_text().split("\n---\n")
    text = "\n---\n".join(d for d in docs if "kind: WorkflowRun" not in d)
    text = (text.replace("name: demo", f"name: {PROJECT}")
            .replace("project.cyclone.dev/name: demo", f"project.cyclone.dev/name: {PROJECT}")
            .replace('[sh, -c, "echo version:', '[sh, -c, "sleep 3; echo version:'))
    path = tmp_path_factory.mktemp("run-detail") / "diamond.yaml"
    path.write_text(text)
    cli_ok(ui_up, "apply", "-f", str(path))
    return "diamond"


@pytest.fixture(scope="module")
def flows(admin_api: httpx.Client, diamond: str) -> None:
    put_stage(admin_api, PREPARE, "echo prepared")
    put_stage(admin_api, SLEEPER, "sleep 60")
    put_stage(admin_api, FLAKY, "echo flaky; exit 3")
    put_workflow(admin_api, SLEEPY, [{"name": SLEEPER}])
    put_workflow(admin_api, FLAKY, [{"name": PREPARE},
                                      {"name": FLAKY, "depends": [PREPARE]}])


def node_phases(page: Any) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries(Array.from(
        document.querySelectorAll('#run-dag .dag-node'),
        n => [n.dataset.stage, n.dataset.phase]))""")


def header_phase(page: Any) -> str:
    return page.locator("#run-header [data-run-phase] .badge").inner_text()


def test_the_diamond_goes_live_to_succeeded_without_a_reload_and_notifies(
        context: Any, admin_page: Any, admin_api: httpx.Client, ui_up: LiveUp,
        diamond: str) -> None:
    context.grant_permissions(["notifications"], origin=ui_up.url)
    admin_page.add_init_script(SPY_NOTIFICATIONS)
    errors: list[str] = []
    admin_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    run = start(admin_api, diamond)
    admin_page.goto(page_url(ui_up, diamond, run))
    admin_page.evaluate("window.__samePage = true")
    assert header_phase(admin_page) in ("Pending", "Running")
    assert set(node_phases(admin_page)) == {"version", "build-linux", "build-mac", "report"}
    admin_page.click("[data-run-notify]")
    admin_page.wait_for_selector("[data-run-notify][aria-pressed=true]")
    admin_page.wait_for_function(
        """() => Array.from(document.querySelectorAll('#run-dag .dag-node'))
                 .every(n => n.dataset.phase === 'Succeeded')""", timeout=TIMEOUT)
    admin_page.wait_for_function(
        """() => document.querySelector('#run-header [data-run-phase]')
                 .textContent.trim() === 'Succeeded'""", timeout=TIMEOUT)
    assert admin_page.evaluate("window.__samePage") is True
    rows = admin_page.locator("#run-stages tbody tr")
    assert rows.count() == 4
    assert {rows.nth(i).get_attribute("data-phase") for i in range(4)} == {"Succeeded"}
    assert admin_page.locator("#run-dag .dag-node .dag-duration").first.text_content() != ""
    admin_page.wait_for_function("() => window.__notified.length > 0", timeout=10_000)
    assert admin_page.evaluate("window.__notified") == [f"Run {run}: Succeeded"]
    assert admin_page.locator("[data-run-notify]").is_hidden()
    admin_page.wait_for_selector("#run-header [data-action=rerun]")
    admin_page.wait_for_selector('#run-dag .dag-node.critical[data-stage="report"]',
                                 timeout=10_000)
    assert "critical path: version → build-" in admin_page.locator("#run-insights").inner_text()
    assert admin_page.locator('#run-dag .dag-edge.critical[data-to="report"]').count() == 1
    screenshot(admin_page, "run-detail")
    assert errors == []


def test_the_timeline_and_the_stage_panel_open_in_place(admin_page: Any,
                                                        admin_api: httpx.Client,
                                                        ui_up: LiveUp, diamond: str) -> None:
    run = start(admin_api, diamond)
    wait_phase(admin_api, diamond, run, {"Succeeded"})
    admin_page.goto(page_url(ui_up, diamond, run))
    admin_page.click("[data-run-view=timeline]")
    admin_page.wait_for_selector("#timeline-view .timeline-row .timeline-bar")
    assert admin_page.locator("#dag-view").is_hidden()
    assert admin_page.locator("#timeline-view .timeline-row").count() == 4
    assert admin_page.url.endswith("?view=timeline")
    screenshot(admin_page, "run-detail-timeline")
    admin_page.click("[data-run-view=dag]")
    admin_page.locator('#run-dag .dag-node[data-stage="build-mac"]').click()
    admin_page.wait_for_selector("#stage-side:not([hidden])")
    assert "stage=build-mac" in admin_page.url
    assert admin_page.locator("[data-stage-title]").inner_text() == "build-mac"
    admin_page.wait_for_selector('#stage-panel-body [data-stage="build-mac"]', state="attached")
    admin_page.goto(admin_page.url)
    assert admin_page.locator("#stage-side").is_visible()
    admin_page.wait_for_selector('#stage-panel-body [data-stage="build-mac"]', state="attached")
    admin_page.click("[data-stage-close]")
    assert admin_page.locator("#stage-side").is_hidden()
    assert "stage=" not in admin_page.url


def wait_header(page: Any, phase: str) -> None:
    page.wait_for_function(
        """phase => document.querySelector('#run-header [data-run-phase]')
                    .textContent.trim() === phase""", arg=phase, timeout=TIMEOUT)


def test_pausing_resuming_and_stopping_a_running_run_from_the_page(
        admin_page: Any, admin_api: httpx.Client, ui_up: LiveUp, flows: None) -> None:
    run = start(admin_api, SLEEPY)
    admin_page.goto(page_url(ui_up, SLEEPY, run))
    admin_page.wait_for_selector('#run-dag .dag-node[data-phase="Running"]', timeout=TIMEOUT)
    admin_page.click("[data-run-notify]")
    admin_page.wait_for_selector("#flash .alert.error")
    assert admin_page.locator("#flash").inner_text().startswith("Notifications are blocked")
    assert admin_page.get_attribute("[data-run-notify]", "aria-pressed") == "false"
    duration = admin_page.locator("#run-header [data-run-duration]")
    before = duration.inner_text()
    admin_page.wait_for_function(
        """before => document.querySelector('#run-header [data-run-duration]')
                     .textContent !== before""", arg=before, timeout=5000)
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    admin_page.on("dialog", accept)
    admin_page.click("#run-header [data-action=pause]")
    wait_header(admin_page, "Paused")
    admin_page.click("#run-header [data-action=resume]")
    wait_header(admin_page, "Running")
    admin_page.click("#run-header [data-action=stop]")
    wait_header(admin_page, "Cancelled")
    assert [question.split("?")[0] for question in asked] == [
        "Pause this run", "Resume this run", "Stop this run"]
    admin_page.wait_for_selector("#run-header [data-action=retry]")
    overall = expect(admin_api.get(f"{runs_path(SLEEPY)}/{run}"), 200)["status"]["overall"]
    assert overall["phase"] == "Cancelled"


def test_a_run_failing_while_watched_gets_its_triage_and_a_retry_succeeds(
        admin_page: Any, admin_api: httpx.Client, ui_up: LiveUp, flows: None) -> None:
    put_stage(admin_api, FLAKY, "sleep 2; echo flaky; exit 3")
    run = start(admin_api, FLAKY)
    admin_page.goto(page_url(ui_up, FLAKY, run))
    assert header_phase(admin_page) != "Failed"
    assert admin_page.locator("#triage").inner_html().strip() == ""
    wait_header(admin_page, "Failed")
    admin_page.wait_for_function(
        "() => document.querySelector('#triage').textContent.includes('flaky')",
        timeout=TIMEOUT)
    assert admin_page.locator(f'#run-stages tr[data-stage="{FLAKY}"]').get_attribute(
        "data-phase") == "Failed"
    admin_page.fill(".run-log-search input[name=q]", "flaky")
    admin_page.click(".run-log-search button[type=submit]")
    admin_page.wait_for_function(
        "() => document.querySelector('.log-search-results').textContent.includes('flaky')",
        timeout=10_000)
    assert admin_page.url == page_url(ui_up, FLAKY, run)
    screenshot(admin_page, "run-detail-failed")
    put_stage(admin_api, FLAKY, "echo fixed")
    admin_page.once("dialog", lambda dialog: dialog.accept())
    admin_page.click("#run-header [data-action=retry]")
    admin_page.wait_for_url(f"**/runs/{run}-retry-*", timeout=TIMEOUT)
    admin_page.wait_for_function(
        """() => document.querySelector('#run-header [data-run-phase]')
                 .textContent.trim() === 'Succeeded'""", timeout=TIMEOUT)
    assert admin_page.locator("#run-header").inner_text().count(run) >= 1
    assert node_phases(admin_page) == {PREPARE: "Succeeded", FLAKY: "Succeeded"}


def test_delete_asks_first_and_a_refusal_keeps_the_run(admin_page: Any, admin_api: httpx.Client,
                                                       ui_up: LiveUp, flows: None) -> None:
    put_stage(admin_api, FLAKY, "echo flaky; exit 3")
    run = start(admin_api, FLAKY)
    wait_phase(admin_api, FLAKY, run, {"Failed"})
    admin_page.goto(page_url(ui_up, FLAKY, run))
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    posted: list[str] = []
    admin_page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    admin_page.once("dialog", dismiss)
    with admin_page.expect_event("dialog"):
        admin_page.click("#run-header [data-action=delete]")
    admin_page.evaluate("() => new Promise(done => setTimeout(done, 0))")
    assert asked and "cannot be undone" in asked[0]
    assert posted == []
    kept = expect(admin_api.get(f"{runs_path(FLAKY)}/{run}"), 200)
    assert "deletionTimestamp" not in kept["metadata"]
    admin_page.once("dialog", lambda dialog: dialog.accept())
    admin_page.click("#run-header [data-action=delete]")
    admin_page.wait_for_url(f"{ui_up.url}/projects/{PROJECT}/workflows/{FLAKY}",
                            timeout=TIMEOUT)
    wait_gone(admin_api, f"{runs_path(FLAKY)}/{run}")


def test_a_refused_action_is_one_line_in_the_flash_not_an_error_page(
        ui_up: LiveUp, admin_api: httpx.Client, diamond: str) -> None:
    run = start(admin_api, diamond)
    wait_phase(admin_api, diamond, run, {"Succeeded"})
    path = f"/projects/{PROJECT}/workflows/{diamond}/runs/{run}"
    with signed_in_client(ui_up.url, ui_up.token) as client:
        answer = client.post(f"{path}/retry", headers={"HX-Request": "true",
                                                       "X-CSRF-Token": client.csrf})
        assert answer.status_code == 409
        assert answer.headers["HX-Retarget"] == "#flash"
        assert "nothing to retry" in answer.text and "Traceback" not in answer.text
        plain = client.post(f"{path}/retry", data={"csrf": client.csrf})
        assert plain.status_code == 409 and "nothing to retry" in plain.text
        assert client.post(f"{path}/explode", data={"csrf": client.csrf}).status_code == 404
        assert client.get(f"/projects/{PROJECT}/workflows/{diamond}/runs/nope").status_code \
            == 404
        header = client.get(path, params={"part": "header"}, headers={"HX-Request": "true"})
        assert header.text.lstrip().startswith('<section id="run-header"')


def test_another_tenant_cannot_see_or_act_on_the_run(ui_up: LiveUp, admin_api: httpx.Client,
                                                      diamond: str,
                                                      tenant: tuple[str, str]) -> None:
    run = start(admin_api, diamond)
    path = f"/projects/{PROJECT}/workflows/{diamond}/runs/{run}"
    with signed_in_client(ui_up.url, tenant[1]) as client:
        assert client.get(path).status_code == 404
        for action in ("stop", "delete"):
            answer = client.post(f"{path}/{action}", data={"csrf": client.csrf})
            assert answer.status_code == 404, action
    expect(admin_api.get(f"{runs_path(diamond)}/{run}"), 200)


def test_a_large_runs_table_arrives_after_the_page_and_still_goes_live(
        admin_page: Any, admin_api: httpx.Client, ui_up: LiveUp, diamond: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cyclone.ui.pages import run_detail

    monkeypatch.setattr(run_detail, "TABLE_INLINE_LIMIT", 2)
    run = start(admin_api, diamond)
    admin_page.goto(page_url(ui_up, diamond, run))
    admin_page.wait_for_selector("#run-stages-slot #run-stages tbody tr", state="attached")
    admin_page.wait_for_function(
        """() => Array.from(document.querySelectorAll('#run-stages tbody tr'))
                 .every(row => row.dataset.phase === 'Succeeded')""", timeout=TIMEOUT)
    cells = admin_page.locator('#run-stages tr[data-stage="report"] [data-cell="duration"]')
    assert cells.inner_text().endswith("s")


def test_a_stage_much_slower_than_in_the_last_green_runs_is_flagged(
        admin_page: Any, admin_api: httpx.Client, ui_up: LiveUp, flows: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The green runs come from the run index, or from a listing while the index has not
    listed the runs yet."""
    from cyclone.ui import indexed_runs

    put_stage(admin_api, "nap", "sleep ${variables.PAUSE}")
    put_workflow(admin_api, "napping", [{"name": "nap"}])

    def nap(seconds: int) -> str:
        body = {"spec": {"globalVariables": [{"name": "PAUSE", "value": str(seconds)}]}}
        return expect(admin_api.post(runs_path("napping"), json=body), 201)["metadata"]["name"]

    quick = [nap(0) for _ in range(3)]
    for run in quick:
        wait_phase(admin_api, "napping", run, {"Succeeded"})
    slow = nap(7)
    wait_phase(admin_api, "napping", slow, {"Succeeded"})
    for wait in (indexed_runs.READY_WAIT_SECONDS, 0):
        monkeypatch.setattr(indexed_runs, "READY_WAIT_SECONDS", wait)
        admin_page.goto(page_url(ui_up, "napping", slow))
        flagged = admin_page.locator('#run-dag .dag-node[data-stage="nap"]')
        assert "regression" in (flagged.get_attribute("class") or ""), wait
        assert "slower" in admin_page.locator(
            '#run-stages tr[data-stage="nap"] th').inner_text()
    admin_page.goto(page_url(ui_up, "napping", quick[-1]))
    assert "regression" not in (admin_page.locator(
        '#run-dag .dag-node[data-stage="nap"]').get_attribute("class") or "")
