"""The global runs list, the overview, the stats page and the Ctrl-K palette in a real
Chromium against the live `cyclone up`: phases, filters in the URL, paging, live rows and
the new-runs notice, and a tenant session seeing only its own tenant's runs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp
from support.ui import browser_sign_in, expect, screenshot, signed_in_client

from cyclone.api import keys
from cyclone.engine.core.triggerrun import TRIGGER_CRON
from cyclone.kube import kinds

API = "/apis/v1alpha1"
PROJECT = "runs-list-ui"
BULK = "runs-list-bulk"
QUICK, FLAKY, SLOW = "rl-quick", "rl-flaky", "rl-slow"
"""Stage and workflow names are unique per tenant: these are this module's own."""
NS = keys.tenant_namespace(keys.DEFAULT_TENANT)


def add_workflow(api: httpx.Client, project: str, workflow: str, script: str) -> None:
    expect(api.post(f"{API}/projects/{project}/stages", json={
        "metadata": {"name": workflow}, "spec": {"pod": {"spec": {"containers": [
            {"image": "alpine:3.20", "command": ["sh", "-c", script]}]}}}}), 201)
    expect(api.post(f"{API}/projects/{project}/workflows", json={
        "metadata": {"name": workflow}, "spec": {"stages": [{"name": workflow}]}}), 201)


def start_run(api: httpx.Client, workflow: str, project: str = PROJECT) -> str:
    answer = expect(api.post(f"{API}/projects/{project}/workflows/{workflow}/workflowruns",
                             json={}), 201)
    return answer["metadata"]["name"]


def phase_of(api: httpx.Client, workflow: str, run: str) -> str:
    got = expect(api.get(f"{API}/projects/{PROJECT}/workflows/{workflow}/workflowruns/{run}"),
                 200)
    return ((got.get("status") or {}).get("overall") or {}).get("phase") or "Pending"


def wait_phase(api: httpx.Client, workflow: str, run: str, *phases: str,
               within: float = 60) -> str:
    deadline = time.monotonic() + within
    while (phase := phase_of(api, workflow, run)) not in phases:
        assert time.monotonic() < deadline, f"{run} stayed {phase}"
        time.sleep(0.2)
    return phase


@pytest.fixture(scope="module")
def finished(admin_api: httpx.Client) -> dict[str, str]:
    """A succeeded run of `rl-quick` and a failed run of `rl-flaky`."""
    expect(admin_api.post(f"{API}/projects", json={"metadata": {"name": PROJECT}}), 201)
    add_workflow(admin_api, PROJECT, QUICK, "echo ok")
    add_workflow(admin_api, PROJECT, FLAKY, "echo broken; exit 3")
    add_workflow(admin_api, PROJECT, SLOW, "sleep 3")
    runs = {QUICK: start_run(admin_api, QUICK), FLAKY: start_run(admin_api, FLAKY)}
    wait_phase(admin_api, QUICK, runs[QUICK], "Succeeded")
    wait_phase(admin_api, FLAKY, runs[FLAKY], "Failed")
    return runs


async def _write_runs(cluster: Any, count: int) -> None:
    """Finished runs written straight to the cluster (no workflow behind them to execute)."""
    for i in range(count):
        name = f"bulk-{i:03d}"
        await cluster.create({
            "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
            "metadata": {"name": name, "namespace": NS,
                         "labels": {keys.LABEL_PROJECT: BULK, keys.LABEL_WORKFLOW: "many"},
                         "annotations": {keys.ANNOTATION_WORKFLOWRUN_TRIGGER: TRIGGER_CRON}},
            "spec": {"workflowRef": {"name": "many"}, "stopped": True}})
        await cluster.patch(kinds.WORKFLOW_RUN, name, {"status": {"overall": {
            "phase": "Succeeded", "startTime": "2026-01-01T00:00:00Z",
            "lastTransitionTime": "2026-01-01T00:00:07Z"}}}, NS, subresource="status")


@pytest.fixture(scope="module")
def bulk(ui_up: LiveUp, admin_api: httpx.Client) -> int:
    expect(admin_api.post(f"{API}/projects", json={"metadata": {"name": BULK}}), 201)
    ui_up.call(_write_runs(ui_up.cluster, 60), timeout=60)
    return 60


@pytest.fixture
def page(admin_page: Any) -> Iterator[Any]:
    errors: list[str] = []
    admin_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield admin_page
    assert [e for e in errors if "EventSource" not in e] == []


def row(page: Any, run: str) -> Any:
    return page.locator(f'tr[data-run="{run}"]')


def test_runs_appear_in_the_list_with_their_phase(page: Any, ui_up: LiveUp,
                                                  finished: dict[str, str]) -> None:
    page.goto(f"{ui_up.url}/runs?project={PROJECT}")
    assert row(page, finished[QUICK]).get_attribute("data-phase") == "Succeeded"
    assert row(page, finished[FLAKY]).get_attribute("data-phase") == "Failed"
    cells = row(page, finished[FLAKY]).locator("td").all_inner_texts()
    assert cells[1:5] == [PROJECT, FLAKY, "Failed", "manual"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cells[5])
    assert re.fullmatch(r"\d+(\.\d)?s", cells[6])
    assert row(page, finished[FLAKY]).locator("a").first.get_attribute("href") == (
        f"/projects/{PROJECT}/workflows/{FLAKY}/runs/{finished[FLAKY]}")
    screenshot(page, "runs-list")


def test_started_times_show_in_the_browsers_zone_with_utc_on_hover(
        browser: Any, ui_up: LiveUp, finished: dict[str, str]) -> None:
    context = browser.new_context(timezone_id="Asia/Tokyo")
    try:
        tokyo = context.new_page()
        browser_sign_in(tokyo, ui_up.url, ui_up.token)
        tokyo.goto(f"{ui_up.url}/runs?project={PROJECT}&workflow={QUICK}")
        shown = row(tokyo, finished[QUICK]).locator("time")
        utc = datetime.fromisoformat(shown.get_attribute("datetime").replace("Z", "+00:00"))
        local = utc.astimezone(timezone(timedelta(hours=9))).strftime("%Y-%m-%d %H:%M:%S")
        assert shown.inner_text() == local
        assert shown.get_attribute("title") == utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    finally:
        context.close()


def test_a_page_fragment_is_served_to_htmx(ui_up: LiveUp, finished: dict[str, str]) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        response = client.get(f"/runs?project={PROJECT}&phase=Failed",
                              headers={"HX-Request": "true", "HX-Target": "runs-table"})
        assert response.status_code == 200
        assert response.text.startswith('<div id="runs-table"') and "<html" not in response.text
        assert f'data-run="{finished[FLAKY]}"' in response.text


def test_the_trigger_filter_offers_the_trigger_kinds_and_finds_cron_runs(
        ui_up: LiveUp, bulk: int, finished: dict[str, str]) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        html = client.get(f"/runs?project={BULK}").text
        offered = re.findall(r'<option value="([^"]*)"', html.split('name="trigger"')[1]
                             .split("</select>")[0])
        assert offered == ["", "manual", "cron", "webhook"]
        cron = client.get(f"/runs?project={BULK}&trigger=cron").text
        assert cron.count('data-run="bulk-') == 50
        manual = client.get(f"/runs?project={BULK}&trigger=manual").text
        assert 'data-run="bulk-' not in manual
        assert f'data-run="{finished[FLAKY]}"' in client.get(
            f"/runs?project={PROJECT}&trigger=manual").text


def test_filters_change_the_url_and_the_rows(page: Any, ui_up: LiveUp,
                                             finished: dict[str, str]) -> None:
    page.goto(f"{ui_up.url}/runs?project={PROJECT}")
    page.select_option("select[name=phase]", "Failed")
    page.wait_for_url(re.compile(r".*phase=Failed.*"))
    assert "project=" + PROJECT in page.url
    shown = page.locator("tbody tr[data-run]").evaluate_all(
        "rows => rows.map(r => r.dataset.phase)")
    assert shown and set(shown) == {"Failed"}
    page.select_option("select[name=phase]", "")
    page.fill("input[name=q]", finished[QUICK])
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*q=" + finished[QUICK]))
    assert page.locator("tbody tr[data-run]").evaluate_all(
        "rows => rows.map(r => r.dataset.run)") == [finished[QUICK]]
    page.goto(f"{ui_up.url}/runs?project={PROJECT}&workflow={QUICK}&to=2000-01-01")
    assert page.locator("tbody tr[data-run]").count() == 0
    assert "No run matches these filters." in page.locator("tbody").inner_text()


def test_paging_by_cursor_over_more_than_fifty_runs(page: Any, ui_up: LiveUp,
                                                    bulk: int) -> None:
    page.goto(f"{ui_up.url}/runs?project={BULK}")
    first = page.locator("tbody tr[data-run]").evaluate_all("rows => rows.map(r => r.dataset.run)")
    assert first == [f"bulk-{i:03d}" for i in range(59, 9, -1)]
    assert page.locator("a[rel=prev]").count() == 0
    page.click("a[rel=next]")
    page.wait_for_url(re.compile(r".*older=.*"))
    assert "project=" + BULK in page.url
    second = page.locator("tbody tr[data-run]").evaluate_all(
        "rows => rows.map(r => r.dataset.run)")
    assert second == [f"bulk-{i:03d}" for i in range(9, -1, -1)]
    assert page.locator("a[rel=next]").count() == 0
    page.click("a[rel=prev]")
    page.wait_for_url(re.compile(r".*newer=.*"))
    assert page.locator("tbody tr[data-run]").evaluate_all(
        "rows => rows.map(r => r.dataset.run)") == first
    assert page.locator("a[rel=prev]").count() == 0


def test_a_running_run_finishing_updates_its_row_and_new_runs_are_announced(
        page: Any, ui_up: LiveUp, admin_api: httpx.Client, finished: dict[str, str]) -> None:
    slow = start_run(admin_api, SLOW)
    wait_phase(admin_api, SLOW, slow, "Running")
    page.goto(f"{ui_up.url}/runs?project={PROJECT}&workflow={SLOW}")
    assert row(page, slow).get_attribute("data-phase") == "Running"
    page.wait_for_selector('[data-runs-live][data-live="open"]')
    another = start_run(admin_api, SLOW)
    notice = page.locator("#new-runs a")
    notice.wait_for(timeout=10000)
    assert notice.inner_text().startswith("1 new run")
    assert row(page, another).count() == 0
    page.wait_for_selector(f'tr[data-run="{slow}"][data-phase="Succeeded"]', timeout=20000)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                        row(page, slow).locator("time").inner_text())
    notice.click()
    page.wait_for_selector(f'tr[data-run="{another}"]')


def test_the_overview_shows_the_fortnight_failures_and_running_now(
        page: Any, ui_up: LiveUp, admin_api: httpx.Client, finished: dict[str, str]) -> None:
    page.goto(f"{ui_up.url}/")
    assert page.locator("h1").first.inner_text() == "Overview"
    assert page.locator("svg.stacked-bars g.day").count() == 14
    today = page.locator("svg.stacked-bars g.day").last
    assert int(today.get_attribute("data-total")) >= 2
    assert today.locator("rect[data-phase=Failed]").count() == 1
    assert re.fullmatch(r"\d+%", page.locator("[data-figure=success-rate] .figure-value")
                        .inner_text())
    failure = page.locator(f'.recent-failures li[data-run="{finished[FLAKY]}"] a')
    assert failure.get_attribute("href") == (
        f"/projects/{PROJECT}/workflows/{FLAKY}/runs/{finished[FLAKY]}")
    expect(admin_api.post(f"{API}/storage/usages", json={
        "total": 1 << 30, "used": 1 << 28, "items": {"caches": 1 << 28}}), 200)
    page.reload()
    storage = page.locator("[data-figure=storage]").inner_text()
    assert "25%" in storage and "256.0 MiB of 1.0 GiB" in storage
    screenshot(page, "overview-figures")
    page.wait_for_selector('#running-now[data-live="open"]')
    slow = start_run(admin_api, SLOW)
    page.wait_for_selector(f'.running-now li[data-run="{slow}"]', timeout=20000)
    page.wait_for_selector(f'.running-now li[data-run="{slow}"]', state="detached",
                           timeout=20000)


def test_the_stats_page_has_a_row_per_project_and_workflow(page: Any, ui_up: LiveUp,
                                                            finished: dict[str, str]) -> None:
    page.goto(f"{ui_up.url}/stats")
    project = page.locator(f'table.stats-projects tr[data-project="{PROJECT}"]')
    cells = project.locator("td").all_inner_texts()
    assert int(cells[1]) >= 2 and int(cells[2]) >= 1 and int(cells[3]) >= 1
    flaky = page.locator(f'table.stats-workflows tr[data-workflow="{PROJECT}/{FLAKY}"] td')
    assert flaky.all_inner_texts()[1:6] == [PROJECT, "1", "0", "1", "0%"]
    assert page.locator("table.stats-days tbody tr").count() == 14
    screenshot(page, "stats")


def test_ctrl_k_opens_the_palette_typing_filters_and_enter_goes_to_the_workflow(
        page: Any, ui_up: LiveUp, finished: dict[str, str]) -> None:
    page.goto(f"{ui_up.url}/runs")
    page.keyboard.press("Control+k")
    dialog = page.locator("dialog#palette")
    dialog.wait_for(state="visible")
    page.wait_for_selector(f'#palette-results a[href$="/workflows/{FLAKY}"]')
    page.keyboard.type(SLOW)
    page.wait_for_selector(f'#palette-results a[href$="/workflows/{FLAKY}"]', state="detached")
    first = page.locator("#palette-results a").first
    assert first.get_attribute("href") == f"/projects/{PROJECT}/workflows/{SLOW}"
    labels = page.locator("#palette-results .palette-label").all_inner_texts()
    assert labels and all(SLOW in label for label in labels)
    screenshot(page, "palette")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{ui_up.url}/projects/{PROJECT}/workflows/{SLOW}")


def test_enter_typed_faster_than_the_palette_follows_goes_to_what_was_typed(
        page: Any, ui_up: LiveUp, finished: dict[str, str]) -> None:
    page.goto(f"{ui_up.url}/stats")
    page.click("[data-palette-open]")
    page.wait_for_selector(f'#palette-results a[href$="/workflows/{FLAKY}"]')
    page.keyboard.type(QUICK[:-1])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{ui_up.url}/projects/{PROJECT}/workflows/{QUICK}")


def test_the_palette_lists_projects_runs_and_pages_of_the_tenant(
        ui_up: LiveUp, finished: dict[str, str]) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        html = client.get("/ui/palette", params={"q": "runs-list"}).text
        assert f'href="/projects/{PROJECT}"' in html
        html = client.get("/ui/palette", params={"q": finished[FLAKY]}).text
        assert f'/workflows/{FLAKY}/runs/{finished[FLAKY]}' in html
        assert 'href="/stats"' in client.get("/ui/palette", params={"q": "sta"}).text
        assert "Nothing matches" in client.get("/ui/palette", params={"q": "<zzz>"}).text
        assert "&lt;zzz&gt;" in client.get("/ui/palette", params={"q": "<zzz>"}).text


def test_a_tenant_session_sees_only_its_own_tenants_runs(
        ui_up: LiveUp, tenant: tuple[str, str], finished: dict[str, str],
        admin_api: httpx.Client) -> None:
    _, token = tenant
    with signed_in_client(ui_up.url, token) as client:
        for url in ("/runs", "/", "/stats", "/ui/palette?q=runs-list"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert PROJECT not in response.text and finished[FLAKY] not in response.text, url
        assert "No runs yet." in client.get("/runs").text
        filtered = client.get(f"/runs?project={PROJECT}").text
        assert "No run matches these filters." in filtered
        assert finished[FLAKY] not in filtered and "data-run=" not in filtered
        seen = []
        with client.stream("GET", "/ui/streams/runs-list", timeout=httpx.Timeout(10, read=3),
                           headers={"Accept": "text/event-stream"}) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            start_run(admin_api, QUICK)
            with pytest.raises(httpx.ReadTimeout):
                for line in lines:
                    seen.append(line)
        assert all(not line.startswith(("event:", "data:")) for line in seen), seen


def test_bad_filters_read_as_one_line_each_not_an_error_page(ui_up: LiveUp) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        response = client.get("/runs", params={"phase": "Nope", "from": "yesterday",
                                               "older": "!!"})
        assert response.status_code == 200
        assert "phase &#39;Nope&#39; is not one of Pending" in response.text
        assert "from &#39;yesterday&#39; is not a date (YYYY-MM-DD)" in response.text
        assert "the page link is not valid: showing the newest runs" in response.text
        assert "Traceback" not in response.text
        response = client.get("/stats", params={"days": "zero"})
        assert response.status_code == 200
        assert "days &#39;zero&#39; is not a number of days from 1 to 366" in response.text


def test_the_list_and_overview_streams_end_when_the_sessions_token_is_revoked(
        ui_up: LiveUp, tenant: tuple[str, str], admin_api: httpx.Client) -> None:
    name, token = tenant
    token_id = token.split(".")[2]
    with signed_in_client(ui_up.url, token) as client, \
            client.stream("GET", "/ui/streams/runs-list", params={"heartbeat": 0.5},
                          timeout=httpx.Timeout(10, read=5)) as listed, \
            client.stream("GET", "/ui/streams/overview", params={"heartbeat": 0.5},
                          timeout=httpx.Timeout(10, read=5)) as overview:
        streams = [listed.iter_lines(), overview.iter_lines()]
        assert [next(lines) for lines in streams] == [": connected", ": connected"]
        assert [next(lines) for lines in streams] == ["", ""]
        assert [next(lines) for lines in streams] == [": keep-alive", ": keep-alive"]
        expect(admin_api.delete(f"{API}/tenants/{name}/tokens/{token_id}"), 204)
        deadline = time.monotonic() + 3
        for lines in streams:
            for line in lines:
                assert time.monotonic() < deadline, f"still streaming: {line!r}"
