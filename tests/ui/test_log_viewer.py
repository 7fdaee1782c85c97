"""The stage panel's log viewer in a real Chromium against the live `cyclone up`: numbered and
coloured lines, `#L` permalinks, search, raw download, markup shown as text, a live stage's
lines appearing as they are written with follow stopping when the user scrolls up; and the
viewer's ANSI parser on fixture strings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp, cli_ok
from support.ui import screenshot

PROJECT = "logview"
COLOURS = r"""
kind: Project
metadata: {name: @P@}
---
kind: Stage
metadata: {name: paint, labels: {project.cyclone.dev/name: @P@}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command:
        - sh
        - -c
        - |
          printf 'plain first line\n'
          printf '\033[31mred error\033[0m then \033[1;32mbold green\033[0m\n'
          printf 'third line with a Needle\n'
          echo '<script>alert(1)</script><b>not bold</b>'
          seq 1 60 | sed 's/^/filler /'
          echo 'last needle line'
          printf 'colour:blue\nsize:3\n' > /cyclone/results/__result__
---
kind: Stage
metadata: {name: ticker, labels: {project.cyclone.dev/name: @P@}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command:
        - sh
        - -c
        - |
          seq 1 80 | sed 's/^/warmup /'
          i=0
          while [ $i -lt 60 ]; do i=$((i+1)); echo "tick $i"; sleep 0.25; done
---
kind: Workflow
metadata: {name: colours, labels: {project.cyclone.dev/name: @P@}}
spec:
  stages: [{name: paint}]
---
kind: Workflow
metadata: {name: ticking, labels: {project.cyclone.dev/name: @P@}}
spec:
  stages: [{name: ticker}]
""".replace("@P@", PROJECT)


def run_phase(api: httpx.Client, workflow: str, run: str) -> tuple[str, str]:
    body = api.get(f"/apis/v1alpha1/projects/{PROJECT}/workflows/{workflow}/workflowruns/{run}"
                   ).json()
    status = body.get("status") or {}
    stage = next(iter((status.get("stages") or {}).values()), {}) or {}
    return ((status.get("overall") or {}).get("phase") or "",
            (stage.get("status") or {}).get("phase") or "")


def wait_for(api: httpx.Client, workflow: str, run: str, phases: tuple[str, ...],
             stage_level: bool = False, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        overall, stage = run_phase(api, workflow, run)
        if (stage if stage_level else overall) in phases:
            return
        assert time.monotonic() < deadline, (overall, stage)
        time.sleep(0.2)


def wait_for_log(api: httpx.Client, workflow: str, run: str, stage: str, text: str,
                 timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    url = f"/apis/v1alpha1/projects/{PROJECT}/workflows/{workflow}/workflowruns/{run}/logs"
    while text not in api.get(url, params={"stage": stage}).text:
        assert time.monotonic() < deadline, (
            f"{text!r} never reached the log of {stage}: "
            f"{api.get(url.removesuffix('/logs')).json().get('status')}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def painted(ui_up: LiveUp, admin_api: httpx.Client) -> Iterator[str]:
    cli_ok(ui_up, "apply", "-f", "-", input=COLOURS)
    cli_ok(ui_up, "run", "colours", "-p", PROJECT, "--name", "colours-1")
    wait_for(admin_api, "colours", "colours-1", ("Succeeded", "Failed"))
    wait_for_log(admin_api, "colours", "colours-1", "paint", "last needle line")
    yield f"/projects/{PROJECT}/workflows/colours/runs/colours-1/stages/paint"


def open_panel(page: Any, url: str) -> Any:
    page.goto(url)
    page.wait_for_selector("[data-logview][data-state=done]")
    return page.locator("[data-logview]")


def poll(page: Any, expression: str, timeout: float = 20) -> None:
    """Wait until `expression` is true in the page. (Playwright's wait_for_function compiles
    its predicate with eval, which the pages' Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.05)


def row(page: Any, n: int) -> Any:
    return page.locator(f".logview-row[data-line='{n}']")


def test_a_stage_log_shows_numbered_coloured_lines_and_its_outputs(
        admin_page: Any, ui_up: LiveUp, painted: str) -> None:
    errors: list[str] = []
    admin_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    viewer = open_panel(admin_page, ui_up.url + painted)
    assert viewer.locator("[data-log-status]").inner_text() == "65 lines."
    assert row(admin_page, 1).locator(".ln").inner_text() == "1"
    assert row(admin_page, 1).locator(".lt").inner_text() == "plain first line"
    coloured = row(admin_page, 2)
    assert coloured.locator(".lt").inner_text() == "red error then bold green"
    assert coloured.locator("span.ansi-1").inner_text() == "red error"
    assert coloured.locator("span.ansi-2.ansi-bold").inner_text() == "bold green"
    assert admin_page.evaluate(
        "getComputedStyle(document.querySelector('.logview-row[data-line=\"2\"] .ansi-1'))"
        ".color") == "rgb(255, 123, 114)"
    admin_page.click("#stage-tab-outputs")
    outputs = admin_page.locator("#stage-tabpanel-outputs tr[data-output]")
    assert [outputs.nth(i).inner_text().split() for i in range(outputs.count())] == [
        ["colour", "blue"], ["size", "3"]]
    assert admin_page.locator("#stage-tabpanel-logs").is_hidden()
    admin_page.click("#stage-tab-logs")
    screenshot(admin_page, "stage-panel")
    assert errors == []


def test_markup_in_a_log_line_is_shown_as_text(admin_page: Any, ui_up: LiveUp,
                                              painted: str) -> None:
    dialogs: list[str] = []
    admin_page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_panel(admin_page, ui_up.url + painted)
    line = row(admin_page, 4).locator(".lt")
    assert line.inner_text() == "<script>alert(1)</script><b>not bold</b>"
    assert line.locator("script, b").count() == 0
    assert dialogs == []


def test_a_line_permalink_highlights_and_scrolls_to_the_line_on_load(
        admin_page: Any, ui_up: LiveUp, painted: str) -> None:
    open_panel(admin_page, ui_up.url + painted + "#L3")
    assert admin_page.locator(".logview-row.highlight").get_attribute("data-line") == "3"
    open_panel(admin_page, ui_up.url + painted + "#L62")
    target = row(admin_page, 62)
    assert "highlight" in target.get_attribute("class")
    assert target.is_visible()
    assert admin_page.evaluate("document.querySelector('[data-log-scroll]').scrollTop") > 0
    admin_page.locator("[data-log-scroll]").evaluate("scroller => { scroller.scrollTop = 0; }")
    poll(admin_page, "!!document.querySelector('.logview-row[data-line=\"5\"]')")
    row(admin_page, 5).locator(".ln").click()
    poll(admin_page, "location.hash === '#L5'")
    poll(admin_page, "document.querySelector('.logview-row.highlight')?.dataset.line === '5'")


def test_searching_the_log_counts_matches_and_steps_through_them(
        admin_page: Any, ui_up: LiveUp, painted: str) -> None:
    open_panel(admin_page, ui_up.url + painted)
    box = admin_page.locator("[data-log-search]")
    box.fill("NEEDLE")
    count = admin_page.locator("[data-log-count]")
    count.filter(has_text="1 of 2").wait_for()
    assert admin_page.locator(".logview-row.current-match").get_attribute("data-line") == "3"
    assert row(admin_page, 3).locator("mark").inner_text() == "Needle"
    box.press("Enter")
    count.filter(has_text="2 of 2").wait_for()
    assert admin_page.locator(".logview-row.current-match").get_attribute("data-line") == "65"
    admin_page.click("[data-log-next]")
    count.filter(has_text="1 of 2").wait_for()
    box.fill("no such text")
    count.filter(has_text="No matches").wait_for()


def test_download_raw_gives_the_stored_text_as_an_attachment(
        admin_page: Any, ui_up: LiveUp, painted: str) -> None:
    open_panel(admin_page, ui_up.url + painted)
    with admin_page.expect_download() as info:
        admin_page.click("[data-log-download]")
    download = info.value
    assert download.suggested_filename == "colours-1-paint-c0.log"
    raw = open(download.path(), "rb").read().decode()
    assert raw.startswith("plain first line\n\x1b[31mred error\x1b[0m then")
    assert raw.endswith("last needle line\n")


def test_a_running_stage_streams_new_lines_and_follow_stops_when_scrolled_up(
        admin_page: Any, ui_up: LiveUp, admin_api: httpx.Client, painted: str) -> None:
    cli_ok(ui_up, "run", "ticking", "-p", PROJECT, "--name", "ticking-1")
    wait_for_log(admin_api, "ticking", "ticking-1", "ticker", "tick 2")
    admin_page.goto(ui_up.url + f"/projects/{PROJECT}/workflows/ticking/runs/ticking-1"
                    "/stages/ticker")
    viewer = admin_page.locator("[data-logview]")
    assert viewer.get_attribute("data-live") == "true"
    assert admin_page.locator("[data-log-follow]").is_checked()
    poll(admin_page,
        "document.querySelector('[data-log-status]').textContent.startsWith('8')"
        " && document.querySelector('[data-log-status]').textContent.includes('live')")
    first = admin_page.evaluate("document.querySelector('[data-log-status]').textContent")
    poll(admin_page,
        f"document.querySelector('[data-log-status]').textContent !== {first!r}")
    scroller = "document.querySelector('[data-log-scroll]')"
    at_bottom = (f"{scroller}.scrollTop + {scroller}.clientHeight >= "
                 f"{scroller}.scrollHeight - 30")
    poll(admin_page, at_bottom)
    admin_page.locator("[data-log-scroll]").hover()
    admin_page.mouse.wheel(0, -600)
    poll(admin_page, "!document.querySelector('[data-log-follow]').checked")
    held = admin_page.evaluate(f"{scroller}.scrollTop")
    lines = admin_page.evaluate("document.querySelector('[data-log-status]').textContent")
    poll(admin_page,
        f"document.querySelector('[data-log-status]').textContent !== {lines!r}")
    assert admin_page.evaluate(f"{scroller}.scrollTop") == held
    assert not admin_page.evaluate(at_bottom)
    screenshot(admin_page, "stage-panel-live")
    cli_ok(ui_up, "stop", "ticking-1", "-p", PROJECT)


ANSI_CASES = [
    ("plain", [["plain", None, False]]),
    ("\x1b[31mred\x1b[0m plain", [["red", 1, False], [" plain", None, False]]),
    ("\x1b[1;92mbright\x1b[22m thin", [["bright", 10, True], [" thin", 10, False]]),
    ("\x1b[38;5;208morange\x1b[39m", [["orange", 208, False]]),
    ("\x1b[38;2;1;2;3mtrue\x1b[m", [["true", None, False]]),
    ("\x1b[44mbg\x1b[4munder\x1b[2K\x1b]0;title\x07\rdone", [
        ["bg", None, False], ["under", None, False], ["done", None, False]]),
    ("a\x1b[?25lb\x1b(Bc", [["a", None, False], ["b", None, False], ["c", None, False]]),
]


def test_the_ansi_parser_keeps_colours_and_bold_and_strips_every_other_escape(
        admin_page: Any, ui_up: LiveUp, painted: str) -> None:
    admin_page.goto(ui_up.url + painted)
    poll(admin_page, "window.CycloneLogs !== undefined")
    for line, expected in ANSI_CASES:
        parsed = admin_page.evaluate(
            "line => window.CycloneLogs.parseAnsi(line, null).segs"
            ".map(s => [s.text, s.fg, s.bold])", line)
        assert parsed == expected, line
        assert admin_page.evaluate("line => window.CycloneLogs.stripAnsi(line)", line) == \
            "".join(text for text, _, _ in expected)
    carried = admin_page.evaluate(
        "() => { const first = window.CycloneLogs.parseAnsi('\\x1b[33mopen', null);"
        " return window.CycloneLogs.parseAnsi('still', first.state).segs"
        ".map(s => [s.text, s.fg]); }")
    assert carried == [["still", 3]]


def seed_sidecar_log(ui_up: LiveUp, admin_api: httpx.Client, container: str,
                     text: bytes) -> None:
    """A complete stored log of another container of colours-1's stage, written through
    the log store as the collector writes one."""
    from cyclone.server.logs.store import LogRef, LogStore, RunRef

    run = admin_api.get(f"/apis/v1alpha1/projects/{PROJECT}/workflows/colours/workflowruns"
                        "/colours-1").json()
    uid = run["metadata"]["uid"]
    stage_dir = next(path for path in ui_up.data_dir.rglob(f"colours-1/{uid}/paint")
                     if "logs" in path.parts)
    writer = LogStore(stage_dir.parents[5]).writer(LogRef(
        RunRef("system", PROJECT, "colours", "colours-1", uid=uid), "paint", container))
    writer.begin_source("seeded")
    writer.append(text, len(text))
    writer.finish()


def test_the_container_picker_switches_to_a_sidecar_log_and_its_download(
        admin_page: Any, ui_up: LiveUp, admin_api: httpx.Client, painted: str) -> None:
    seed_sidecar_log(ui_up, admin_api, "wsc-notes", b"notes one\nnotes two\n")
    open_panel(admin_page, ui_up.url + painted)
    assert row(admin_page, 1).locator(".lt").inner_text() == "plain first line"
    admin_page.select_option("[data-log-container]", "wsc-notes")
    poll(admin_page, "document.querySelector('[data-log-status]').textContent === '2 lines.'")
    assert row(admin_page, 2).locator(".lt").inner_text() == "notes two"
    assert admin_page.url.endswith(f"{painted}?container=wsc-notes")
    assert admin_page.locator("[data-log-download]").get_attribute("href") == \
        f"{painted}/log?container=wsc-notes"
    admin_page.reload()
    admin_page.wait_for_selector("[data-logview][data-state=done]")
    assert row(admin_page, 1).locator(".lt").inner_text() == "notes one"
