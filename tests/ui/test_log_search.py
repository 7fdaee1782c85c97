"""Search across a run's logs: the bounded, literal, case-insensitive matching (pure), and the
`…/runs/{r}/search` page on the live `cyclone up`, whose results link to the stage panel at
the matching line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp, cli_ok
from support.ui import screenshot, signed_in_client

from cyclone.ui.log_search import (
    MAX_QUERY_LENGTH,
    LineHit,
    SearchQueryError,
    run_logs,
    search_lines,
    search_logs,
    snippet,
    strip_ansi,
    text_lines,
)


class CountingLines:
    """Lines that count how many were read."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.read += 1
            yield line


def test_matching_is_literal_and_case_insensitive_with_one_based_line_numbers() -> None:
    hits, more = search_lines(["start", "Error: a.b", "aXb", "no", "ERROR again"], "error", 10)
    assert hits == [LineHit(2, "Error: a.b"), LineHit(5, "ERROR again")]
    assert not more
    assert search_lines(["aXb", "a.b"], "a.b", 10)[0] == [LineHit(2, "a.b")]
    assert search_lines(["(x+", "x+"], "(x+", 10)[0] == [LineHit(1, "(x+")]


def test_escapes_are_neither_matched_nor_shown() -> None:
    line = "\x1b[31mfail\x1b[0med \x1b]0;title\x07here\r"
    assert strip_ansi(line) == "failed here"
    assert search_lines([line], "failed", 5)[0] == [LineHit(1, "failed here")]
    assert search_lines([line], "31m", 5)[0] == []


def test_a_log_stops_being_read_at_the_first_match_past_its_cap() -> None:
    lines = CountingLines([f"hit {i}" for i in range(1000)])
    hits, more = search_lines(lines, "hit", 3)
    assert [h.number for h in hits] == [1, 2, 3]
    assert more and lines.read == 4


def test_the_cap_in_all_stops_the_search_before_later_logs_are_read() -> None:
    first = CountingLines(["x"] * 10)
    second = CountingLines(["x"] * 10)
    third = CountingLines(["x"] * 10)
    result = search_logs([("a", "c0", first), ("b", "c0", second), ("c", "c0", third)], "X",
                         per_log=4, in_all=6)
    assert [(log.stage, len(log.hits), log.more) for log in result.logs] == [
        ("a", 4, True), ("b", 2, True)]
    assert result.total == 6 and result.truncated
    assert third.read == 0 and result.searched == 2


def test_the_cap_on_lines_read_stops_the_search_midway_through_a_log() -> None:
    first = CountingLines(["nothing"] * 50)
    second = CountingLines(["nothing"] * 49 + ["late hit"])
    third = CountingLines(["hit"])
    result = search_logs([("a", "c0", first), ("b", "c0", second), ("c", "c0", third)],
                         "hit", max_lines=80)
    assert result.logs == [] and result.truncated
    assert result.read == 80 and second.read == 31 and third.read == 0
    assert not search_logs([("a", "c0", ["x"] * 80)], "hit", max_lines=80).truncated
    assert search_logs([("a", "c0", ["x"] * 81)], "hit", max_lines=80).truncated


def test_logs_without_hits_are_left_out_and_sidecars_are_marked() -> None:
    result = search_logs([("a", "c0", ["nothing"]), ("a", "csc-git", ["clone ok"]),
                          ("b", "c0", ["ok"])], "ok")
    assert [(log.stage, log.container, log.sidecar) for log in result.logs] == [
        ("a", "csc-git", True), ("b", "c0", False)]
    assert result.searched == 3 and not result.truncated


@pytest.mark.parametrize("query", ["", "   ", "x" * (MAX_QUERY_LENGTH + 1)])
def test_an_empty_or_overlong_query_is_refused(query: str) -> None:
    with pytest.raises(SearchQueryError):
        search_logs([("a", "c0", ["x"])], query)


def test_a_long_line_is_cut_around_its_match() -> None:
    line = "a" * 1000 + "NEEDLE" + "b" * 1000
    cut = snippet(line, 1000, 6, width=40)
    assert "NEEDLE" in cut and cut.startswith("…") and cut.endswith("…")
    assert len(cut) == 42
    assert snippet("short", 0, 5) == "short"
    assert snippet("NEEDLE" + "b" * 100, 0, 6, width=20) == "NEEDLE" + "b" * 14 + "…"


def test_text_lines_split_chunks_keeping_numbering_like_the_viewer() -> None:
    chunks = [b"one\r\ntw", "o \xe2\x82".encode("latin-1"), b"\xac\nthree"]
    assert list(text_lines(chunks)) == ["one", "two €", "three"]
    assert list(text_lines([b"a\n\nb\n"])) == ["a", "", "b"]
    assert list(text_lines([b"\xff\n"])) == ["\ufffd"]


def test_run_logs_orders_stages_by_start_and_workload_before_sidecars(tmp_path) -> None:
    from cyclone.server.logs.store import LogRef, LogStore, RunRef

    store = LogStore(tmp_path)
    ref = RunRef("t", "p", "w", "r", uid="u1")
    for stage, container in (("late", "c0"), ("early", "wsc-x"), ("early", "c0")):
        writer = store.writer(LogRef(ref, stage, container))
        writer.append(f"{stage}/{container}\n".encode(), 1)
    run = {"status": {"stages": {"late": {"status": {"startTime": "2026-01-01T00:00:02Z"}},
                                 "early": {"status": {"startTime": "2026-01-01T00:00:01Z"}}}}}
    found = [(stage, container, list(lines)) for stage, container, lines in
             run_logs(store, ref, run)]
    assert found == [("early", "c0", ["early/c0"]), ("early", "wsc-x", ["early/wsc-x"]),
                     ("late", "c0", ["late/c0"])]


PROJECT = "logsearch"
MANIFESTS = r"""
kind: Project
metadata: {name: @P@}
---
kind: Stage
metadata: {name: compile, labels: {project.cyclone.dev/name: @P@}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo compiling; echo 'warning: Deprecated flag'; echo done"]
---
kind: Stage
metadata: {name: verify, labels: {project.cyclone.dev/name: @P@}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "seq 1 70 | sed 's/^/check /'; echo 'WARNING: <b>flaky</b> test'"]
---
kind: Workflow
metadata: {name: build, labels: {project.cyclone.dev/name: @P@}}
spec:
  stages: [{name: compile}, {name: verify, depends: [compile]}]
""".replace("@P@", PROJECT)
RUN = f"/projects/{PROJECT}/workflows/build/runs/build-1"


@pytest.fixture(scope="module")
def searched_run(ui_up: LiveUp, admin_api: httpx.Client) -> str:
    cli_ok(ui_up, "apply", "-f", "-", input=MANIFESTS)
    cli_ok(ui_up, "run", "build", "-p", PROJECT, "--name", "build-1")
    api_run = f"/apis/v1alpha1/projects/{PROJECT}/workflows/build/workflowruns/build-1"
    deadline = time.monotonic() + 60
    while "flaky" not in admin_api.get(f"{api_run}/logs", params={"stage": "verify"}).text:
        assert time.monotonic() < deadline, admin_api.get(api_run).json().get("status")
        time.sleep(0.2)
    return RUN


def test_the_search_page_groups_hits_by_stage_linking_to_their_lines(
        ui_up: LiveUp, searched_run: str) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        page = client.get(f"{searched_run}/search", params={"q": "warning"})
        assert page.status_code == 200 and "<!doctype html>" in page.text
        fragment = client.get(f"{searched_run}/search", params={"q": "WARNING"},
                              headers={"HX-Request": "true"}).text
        empty = client.get(f"{searched_run}/search", params={"q": "   "},
                           headers={"HX-Request": "true"}).text
        nothing = client.get(f"{searched_run}/search", params={"q": "zzz"},
                             headers={"HX-Request": "true"}).text
    assert "<html" not in fragment
    assert '2 matching lines in 2 logs' in fragment
    compile_hits = fragment.split('data-stage="compile"')[1].split("</section>")[0]
    assert f'href="{RUN}/stages/compile#L2" data-line="2">2</a>' in compile_hits
    verify_hits = fragment.split('data-stage="verify"')[1].split("</section>")[0]
    assert f'href="{RUN}/stages/verify#L71" data-line="71">71</a>' in verify_hits
    assert "<code>WARNING: &lt;b&gt;flaky&lt;/b&gt; test</code>" in verify_hits
    assert "type something to search for" in empty
    assert "No line matches “zzz” in 2 logs" in nothing


def test_a_search_result_opens_the_stage_at_the_matching_line(
        admin_page: Any, ui_up: LiveUp, searched_run: str) -> None:
    admin_page.goto(f"{ui_up.url}{searched_run}/search?q=flaky")
    screenshot(admin_page, "log-search")
    admin_page.click("a.ln[data-line='71']")
    admin_page.wait_for_selector(".logview-row.highlight")
    assert admin_page.url.endswith("/stages/verify#L71")
    highlighted = admin_page.locator(".logview-row.highlight")
    assert highlighted.get_attribute("data-line") == "71"
    assert highlighted.locator(".lt").inner_text() == "WARNING: <b>flaky</b> test"
    assert highlighted.is_visible()


def test_the_search_box_on_a_page_loads_results_in_place(
        admin_page: Any, ui_up: LiveUp, searched_run: str) -> None:
    admin_page.goto(f"{ui_up.url}{searched_run}/search")
    admin_page.fill("input[name=q]", "deprecated")
    admin_page.press("input[name=q]", "Enter")
    admin_page.wait_for_selector("[data-log-search-results] .log-search-stage")
    stages = admin_page.locator(".log-search-stage")
    assert stages.count() == 1 and stages.get_attribute("data-stage") == "compile"
    assert admin_page.url.endswith("/search"), "the page was left instead of updated"
