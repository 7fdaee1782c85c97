"""The triage card and the comparison page render for empty, normal and large data, with
every tenant-controlled text escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request

from cyclone.ui.compare import compare
from cyclone.ui.run_index import summarize
from cyclone.ui.templating import environment
from cyclone.ui.triage import Triage, triage

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
EVIL = '<script>alert("x")</script>'


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage(start: float, end: float, phase: str = "Succeeded", **status: Any) -> dict:
    return {"status": {"phase": phase, "startTime": at(start), "lastTransitionTime": at(end),
                       **status}, "outputs": [{"key": "out", "value": f"{phase}-{end}"}]}


def run(name: str, stages: dict[str, dict], phase: str = "Succeeded", created: float = 0,
        parameters: dict[str, str] | None = None) -> dict:
    spec: dict[str, Any] = {}
    if parameters:
        spec["stages"] = [{"name": "build", "parameters": [
            {"name": k, "value": v} for k, v in parameters.items()]}]
    return {"metadata": {"name": name, "creationTimestamp": at(created)}, "spec": spec,
            "status": {"overall": {"phase": phase, "startTime": at(created),
                                   "lastTransitionTime": at(created + 100)},
                       "stages": stages}}


def request(path: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "query_string": b"",
                    "headers": []})


def render_card(found: Triage, phase: str = "Failed") -> str:
    return environment().get_template("insights/triage_card.html").render(
        request=request("/x"), session=None, csrf="", triage=found, phase=phase, name="red",
        stage_url="/s", green_url="/g", compare_url="/c")


def render_compare(**context: Any) -> str:
    values = {"project": "p", "workflow": "w", "workflow_url": "/projects/p/workflows/w",
              "runs": [], "a": "", "b": "", "comparison": None, "note": "",
              "run_url": lambda name: f"/r/{name}", **context}
    return environment().get_template("insights/compare.html").render(
        request=request("/projects/p/workflows/w/compare"), session=None, csrf="", **values)


def test_the_card_of_a_failed_stage_shows_the_cause_log_and_changes() -> None:
    green = run("green", {"build": stage(0, 5)}, parameters={"FAIL": "no"})
    red = run("red", {"build": stage(0, 9, "Failed", reason="PodFailed",
                                     message='container "main" failed: Error (exit code 1)')},
              phase="Failed", created=50, parameters={"FAIL": "yes"})
    html = render_card(triage(red, None, green,
                              lambda s: ["start", "boom: failure here", "end"]))
    assert "Failed at" in html and ">build</a>: Error (exit code 1)" in html
    assert 'href="/s#L2"' in html and "boom: failure here" in html
    assert 'class="match"' in html
    assert "Since the last green run (" in html and ">green</a>" in html
    assert "FAIL" in html and "<del>no</del> → <ins>yes</ins>" in html


def test_the_card_renders_without_a_stage_a_log_or_a_green_run() -> None:
    empty = render_card(Triage(None, "", ""))
    assert "Failed:" in empty and "no green run" in empty
    no_log = render_card(triage(run("r", {"b": stage(0, 1, "Failed")}, "Failed"), None, None,
                                lambda s: []))
    assert "no stored log" in no_log
    assert "Nothing to triage" in render_card(Triage(None, "", ""), phase="Succeeded")


def test_the_card_escapes_log_lines_names_and_values() -> None:
    green = run("green", {}, parameters={"X": EVIL})
    red = run("red", {EVIL: stage(0, 9, "Failed", message=EVIL)}, "Failed", 50,
              parameters={"X": "ok"})
    html = render_card(triage(red, None, green, lambda s: [f"error {EVIL}"]))
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 4


def test_a_large_triage_stays_bounded() -> None:
    lines = (f"error line {i} " + "x" * 5000 for i in range(100_000))
    quiet = (f"line {i}" for i in range(100_000))
    many = {f"P{i}": str(i) for i in range(300)}
    green = run("green", {}, parameters=many)
    red = run("red", {"build": stage(0, 9, "Failed")}, "Failed", 50,
              parameters={k: v + "!" for k, v in many.items()})
    html = render_card(triage(red, None, green, lambda s: lines))
    tail = render_card(triage(red, None, None, lambda s: quiet))
    assert html.count('class="match"') == 20 and html.count("Parameter <code>") == 300
    assert "x" * 501 not in html
    assert "Last lines of the log" in tail and 'href="/s#L100000"' in tail


def test_the_compare_page_renders_before_any_run_and_without_a_green_one() -> None:
    html = render_compare(note="This workflow has no runs yet.")
    assert "no runs yet" in html and "data-compare-table" not in html
    html = render_compare(runs=[summarize(run("only", {}, "Failed"))], a="only",
                          note="No green run of this workflow before only")
    assert '<option value="only" selected>only · Failed</option>' in html


def test_the_compare_page_shows_phases_durations_deltas_and_differences() -> None:
    a = run("green", {"build": stage(0, 10), "lint": stage(0, 2)}, parameters={"FAIL": "no"})
    b = run("red", {"build": stage(0, 40, "Failed"), "scan": stage(0, 3)}, "Failed", 10,
            parameters={"FAIL": "yes"})
    html = render_compare(runs=[b, a], a="red", b="green", comparison=compare(a, b))
    assert 'data-stage="build" class="phase-changed"' in html
    assert 'class="num delta trend-slower" title="slower">+30s</td>' in html
    assert "(only in green)" in html and "(only in red)" in html
    assert "<del>no</del> → <ins>yes</ins>" in html
    assert "<code>build.out</code>" in html


def test_a_large_comparison_renders_and_escapes_names() -> None:
    stages = {f"stage-{i}": stage(i, i + 5) for i in range(2000)}
    a = run("a", stages)
    b = run("b", {**{f"stage-{i}": stage(i, i + 9) for i in range(2000)},
                  EVIL: stage(0, 1)}, created=10)
    html = render_compare(runs=[b, a] * 100, a="a", b="b", comparison=compare(a, b))
    assert html.count("<tr data-stage=") == 2001
    assert "<script>alert" not in html
