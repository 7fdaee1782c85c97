"""The run page rendered from run objects without a server: what the header says, which
actions it offers, and the page for empty, normal and 2,000-stage runs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from starlette.requests import Request

from cyclone.api import keys
from cyclone.engine.core.triggerrun import LABEL_TRIGGER
from cyclone.ui.pages.run_detail import TABLE_INLINE_LIMIT, header_context, page_context
from cyclone.ui.run_summary import (
    actions_for,
    commit_of,
    parameters_of,
    run_phase,
    started_by,
    trigger_of,
    variables_of,
)
from cyclone.ui.templating import render

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                    "query_string": b"", "app": None})


def workflow(*stages: tuple[str, list[str]]) -> dict:
    return {"metadata": {"name": "wf"},
            "spec": {"stages": [{"name": n, "depends": d} for n, d in stages]}}


def run(phase: str = "Running", stages: dict | None = None, **meta: dict) -> dict:
    return {"metadata": {"name": "wf-run-1", **meta}, "spec": {},
            "status": {"overall": {"phase": phase, "startTime": at(0)},
                       "stages": stages or {}}}


def stage(phase: str, start: float, end: float | None = None, **more: object) -> dict:
    status = {"phase": phase, "startTime": at(start)}
    if end is not None:
        status["lastTransitionTime"] = at(end)
    return {"status": {**status, **more}, "attempts": 1}


def html(context: dict, template: str = "run_detail.html") -> str:
    return render(request(), template, context).body.decode()


# What the header says


def test_a_run_without_trigger_annotation_was_started_by_hand() -> None:
    trigger = trigger_of(run())
    assert (trigger.kind, trigger.text) == ("manual", "manual")
    assert started_by(run()) == "a user (API, CLI or UI)"


def test_a_cron_run_names_its_trigger() -> None:
    cron = run(annotations={keys.ANNOTATION_WORKFLOWRUN_TRIGGER: "cron-timer"},
               labels={LABEL_TRIGGER: "nightly"})
    assert trigger_of(cron).kind == "cron"
    assert trigger_of(cron).text == "cron trigger nightly"
    assert started_by(cron) == "trigger nightly"


def test_a_webhook_run_tells_the_scm_event_and_its_commit() -> None:
    event = {"provider": "GitHub", "type": "scm-push", "repo": "org/app", "branch": "main",
             "revision": "refs/heads/main", "commit": "0123456789abcdef"}
    hooked = run(annotations={keys.ANNOTATION_WORKFLOWRUN_TRIGGER: "scm-push",
                              keys.ANNOTATION_SCM_EVENT: json.dumps(event)},
                 labels={LABEL_TRIGGER: "on-push"})
    trigger = trigger_of(hooked)
    assert trigger.kind == "webhook"
    assert trigger.text == "scm-push to main of org/app"
    assert started_by(hooked) == "trigger on-push, GitHub webhook"
    assert commit_of(hooked) == "0123456789abcdef"


def test_an_unreadable_scm_event_is_ignored() -> None:
    broken = run(annotations={keys.ANNOTATION_WORKFLOWRUN_TRIGGER: "scm-push",
                              keys.ANNOTATION_SCM_EVENT: "{not json"})
    assert trigger_of(broken).text == "scm-push"
    assert commit_of(broken) == ""


def test_the_commit_a_resolver_checked_out_wins_over_the_requested_revision() -> None:
    built = run(stages={"src": {"status": {"phase": "Succeeded"},
                                "outputs": [{"key": "LastCommitID", "value": "feedbeef"}]}})
    built["spec"]["resources"] = [{"name": "git", "parameters": [
        {"name": "SCM_REVISION", "value": "main"}]}]
    assert commit_of(built) == "feedbeef"
    built["status"]["stages"] = {}
    assert commit_of(built) == "main"


def test_parameters_and_global_variables_are_listed() -> None:
    given = run()
    given["spec"] = {"stages": [{"name": "build", "parameters": [{"name": "GOOS",
                                                                  "value": "linux"}]}],
                     "resources": [{"name": "src", "parameters": [{"name": "SCM_REVISION"}]}],
                     "globalVariables": [{"name": "LEVEL", "value": "3"}]}
    assert parameters_of(given) == [("src", "SCM_REVISION", ""), ("build", "GOOS", "linux")]
    assert variables_of(given) == [("LEVEL", "3")]


def test_a_paused_run_reads_paused() -> None:
    paused = run()
    paused["status"]["overall"]["reason"] = "ManuallyPause"
    assert run_phase(paused) == "Paused"


@pytest.mark.parametrize(("phase", "spec", "expected"), [
    ("Pending", {}, ["stop", "pause", "delete"]),
    ("Running", {}, ["stop", "pause", "delete"]),
    ("Running", {"paused": True}, ["stop", "resume", "delete"]),
    ("Running", {"stopped": True}, ["delete"]),
    ("Failed", {}, ["retry", "rerun", "delete"]),
    ("Cancelled", {}, ["retry", "rerun", "delete"]),
    ("Succeeded", {}, ["rerun", "delete"]),
])
def test_the_actions_offered_fit_the_phase(phase: str, spec: dict, expected: list[str]) -> None:
    shown = run(phase)
    shown["spec"] = spec
    assert [a.name for a in actions_for(shown)] == expected


# The page


DIAMOND = workflow(("version", []), ("build-linux", ["version"]), ("build-mac", ["version"]),
                   ("report", ["build-linux", "build-mac"]))


def test_a_run_with_no_status_yet_renders_every_stage_pending() -> None:
    fresh = {"metadata": {"name": "wf-run-1"}, "spec": {}}
    page = html(page_context("p", "wf", fresh, DIAMOND, [], now=NOW))
    assert re.findall(r'class="dag-node[^"]*"\s+data-stage="([^"]+)" data-phase="Pending"',
                      page) == ["version", "build-linux", "build-mac", "report"]
    assert page.count('<tr data-stage=') == 4
    assert "not yet" in page
    assert 'data-action="stop"' in page


def test_a_failed_run_shows_phases_durations_the_failure_and_loads_its_triage() -> None:
    failed = run("Failed", {
        "version": stage("Succeeded", 0, 4),
        "build-linux": stage("Failed", 4, 64, message="exit code 2"),
        "build-mac": stage("Succeeded", 4, 20),
    })
    failed["status"]["overall"].update(lastTransitionTime=at(64), reason="StageFailed",
                                       message="stage build-linux failed")
    page = html(page_context("p", "wf", failed, DIAMOND, [], now=NOW))
    assert 'data-stage="build-linux" data-phase="Failed"' in page
    assert ">1m0s<" in page
    assert "exit code 2" in page
    assert 'hx-get="/projects/p/workflows/wf/runs/wf-run-1/triage"' in page
    assert "StageFailed: stage build-linux failed" in page
    assert re.search(r'data-run-duration[^>]*>1m4s<', page)
    assert [m for m in re.findall(r'data-action="(\w+)"', page)] == ["retry", "rerun",
                                                                      "delete"]
    assert "critical path: version → build-linux" in page


def test_a_stage_name_with_markup_stays_text_everywhere() -> None:
    evil = "<img src=x onerror=alert(1)>"
    wf = workflow(("a", []), (evil, ["a"]))
    shown = run("Running", {evil: stage("Running", 1, message="<b>bold</b>")})
    shown["spec"]["globalVariables"] = [{"name": "V", "value": "<script>x()</script>"}]
    page = html(page_context("p", "wf", shown, wf, [], view="timeline", stage=evil, now=NOW))
    assert "<img src=x" not in page
    assert "<b>bold" not in page and "<script>x()" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    config = re.search(r'<script type="application/json" id="run-config">(.*?)</script>',
                       page, re.S)
    assert config and json.loads(config.group(1))["stage"] == evil


def test_the_header_fragment_stands_alone() -> None:
    fragment = html(header_context("p", "wf", run("Succeeded")), "run/header.html")
    assert fragment.lstrip().startswith('<section id="run-header"')
    assert 'data-phase="Succeeded"' in fragment


def test_a_two_thousand_stage_run_renders_its_graph_and_defers_its_table() -> None:
    names = [f"stage-{i:04d}" for i in range(2000)]
    wf = workflow(*((n, [names[i - 1]] if i % 40 else []) for i, n in enumerate(names)))
    big = run("Running", {n: stage("Succeeded", i, i + 2) for i, n in enumerate(names[:1500])})
    page = html(page_context("p", "wf", big, wf, [], now=NOW))
    assert len(re.findall(r'<g class="dag-node[ "]', page)) == 2000
    assert page.count("<tr data-stage=") == 0
    assert 'hx-get="/projects/p/workflows/wf/runs/wf-run-1?part=stages"' in page
    context = page_context("p", "wf", big, wf, [], full_table=True, now=NOW)
    table = html(context, "run/stages.html")
    assert table.count("<tr data-stage=") == 2000
    assert html(context).count("<tr data-stage=") == 2000


def test_a_run_of_a_few_hundred_stages_has_its_table_in_the_page() -> None:
    names = [f"s{i}" for i in range(TABLE_INLINE_LIMIT)]
    page = html(page_context("p", "wf", run(), workflow(*((n, []) for n in names)), [],
                             now=NOW))
    assert page.count("<tr data-stage=") == TABLE_INLINE_LIMIT


def test_the_insights_legend_carries_its_names_as_json_whatever_they_hold() -> None:
    odd = "it's \"odd\" <b>"
    context = page_context("p", "wf", run("Running"), workflow(("a", [])), [], now=NOW)
    context.update(critical=["a", odd], flagged={odd: "2.0x slower than the median"})
    fragment = html(context, "run/insights.html")
    found = re.search(r"data-critical='([^']*)'\s+data-flagged='([^']*)'", fragment)
    assert found, fragment
    critical, flagged = (json.loads(unescape(part)) for part in found.groups())
    assert critical == ["a", odd] and flagged == {odd: "2.0x slower than the median"}
    assert "<b>" not in fragment
