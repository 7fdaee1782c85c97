"""The rules every page shares, without a server: the addresses of projects, workflows, runs
and stages (each path segment quoted), a run's phase as a person reads it (Paused) on every
page that shows one, and the durations of a stage and of a run."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from cyclone.ui import indexed_runs, urls
from cyclone.ui import workflow_view as view
from cyclone.ui.compare import compare
from cyclone.ui.dag_view import run_node_info, stage_phase
from cyclone.ui.durations import stage_seconds
from cyclone.ui.insights import recent_successes
from cyclone.ui.pages.run_detail import header_context, page_context
from cyclone.ui.run_index import summarize
from cyclone.ui.run_summary import run_phase, stage_rows
from cyclone.ui.templating import environment, format_seconds
from cyclone.ui.timeline import build_timeline
from ui.test_workflow_page_units import rendered, run, workflow_page

NOW = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)


def paused(created: str = "2026-03-01T10:00:00Z") -> dict:
    return {"metadata": {"name": "build-paused", "creationTimestamp": created, "labels": {
        "project.cyclone.dev/name": "app", "workflow.cyclone.dev/name": "build"}},
        "spec": {"paused": True},
        "status": {"overall": {"phase": "Running", "reason": "ManuallyPause",
                               "startTime": created},
                   "stages": {"compile": {"status": {"phase": "Running",
                                                     "startTime": created}}}}}


def test_every_path_segment_is_quoted_even_a_slash() -> None:
    assert urls.project_url("a b") == "/projects/a%20b"
    assert urls.workflow_url("p", "w/x") == "/projects/p/workflows/w%2Fx"
    assert urls.run_url("p", "w", "r?1#2") == "/projects/p/workflows/w/runs/r%3F1%232"
    assert urls.stage_url("p", "w", "r", "s&t") == "/projects/p/workflows/w/runs/r/stages/s%26t"
    assert urls.compare_url("p", "w") == "/projects/p/workflows/w/compare"
    assert urls.compare_url("p", "w", "r 1", "r&2") == \
        "/projects/p/workflows/w/compare?a=r+1&b=r%262"


def test_templates_build_the_same_addresses_as_the_pages() -> None:
    template = environment().from_string(
        "{{ project_url(p) }}|{{ workflow_url(p, w) }}|{{ run_url(p, w, r) }}|"
        "{{ stage_url(p, w, r, s) }}|{{ compare_url(p, w, r) }}")
    names = {"p": "a b", "w": "w/x", "r": "r?1", "s": "s#1"}
    assert template.render(names).split("|") == [
        urls.project_url("a b"), urls.workflow_url("a b", "w/x"),
        urls.run_url("a b", "w/x", "r?1"), urls.stage_url("a b", "w/x", "r?1", "s#1"),
        urls.compare_url("a b", "w/x", "r?1")]


def test_the_projects_page_links_a_last_run_by_the_shared_address() -> None:
    last = run("build-1", "Succeeded", 0, 5, workflow="w/x")
    html = rendered("projects.html", {"rows": [{
        "name": "app", "description": "", "workflows": 1, "last_run": summarize(last),
        "created": ""}]})
    assert f'href="{urls.run_url("app", "w/x", "build-1")}"' in html


def test_a_paused_run_reads_paused_on_the_workflow_page() -> None:
    html = workflow_page([paused(), run("build-1", "Succeeded", 0, 65)])
    assert 'data-phase="Paused">Paused</span>' in html


def test_a_paused_run_reads_paused_in_a_comparison() -> None:
    green = run("build-1", "Succeeded", 0, 65)
    found = compare(green, paused(), now=NOW)
    assert (found.phase_a, found.phase_b) == ("Succeeded", "Paused")


def test_a_run_or_stage_without_a_phase_is_pending_everywhere() -> None:
    assert run_phase({}) == "Pending" and stage_phase(None) == "Pending"
    assert stage_phase({"status": {}}) == "Pending"
    assert recent_successes(paused(), [run("build-1", "Succeeded", 0, 65), {
        "metadata": {"name": "fresh", "creationTimestamp": "2026-02-28T10:00:00Z"}}], 5)[0][
        "metadata"]["name"] == "build-1"


def timed_run() -> dict:
    """A finished run whose stage `again` waits again after it started (a retry), and whose
    stage `lost` ended without a recorded end."""
    return {"metadata": {"name": "timed", "creationTimestamp": "2026-03-01T09:59:00Z"},
            "status": {"overall": {"phase": "Failed", "startTime": "2026-03-01T10:00:00Z",
                                   "lastTransitionTime": "2026-03-01T10:01:40Z"},
                       "completionTime": "2026-03-01T10:01:30Z",
                       "stages": {
                           "again": {"status": {"phase": "Waiting",
                                                "startTime": "2026-03-01T10:00:10Z"}},
                           "lost": {"status": {"phase": "Failed",
                                               "startTime": "2026-03-01T10:00:05Z"}}}}}


def test_a_stage_lasts_as_long_on_its_node_its_row_its_bar_and_in_a_comparison() -> None:
    run_ = timed_run()
    nodes = run_node_info(run_, NOW)
    rows = {r.name: r for r in stage_rows(["again", "lost"], nodes)}
    bars = {b.stage: b for b in build_timeline(run_, ["again", "lost"], NOW).bars}
    compared = {r.stage: r for r in compare(run_, run_, now=NOW).stages}
    for name in ("again", "lost"):
        seconds = stage_seconds(run_["status"]["stages"][name], NOW)
        assert seconds is not None
        assert nodes[name].duration == rows[name].duration == format_seconds(seconds)
        assert bars[name].end - bars[name].start == seconds
        assert compared[name].seconds_a == seconds
    assert nodes["again"].duration == "7m20s" and nodes["lost"].duration == "0.0s"


def test_a_run_lasts_as_long_in_its_header_its_workflow_row_and_a_comparison() -> None:
    run_ = timed_run()
    assert header_context("p", "w", run_)["duration"] == 90.0
    assert view.run_seconds(run_, NOW) == 90.0
    assert compare(run_, run_, now=NOW).seconds_a == 90.0
    never = {"metadata": {"name": "queued", "creationTimestamp": "2026-03-01T09:59:00Z"}}
    assert compare(never, never, now=NOW).seconds_a is None


def test_runs_of_the_same_second_keep_the_run_index_order_on_the_workflow_page() -> None:
    same_second = [run("alpha", "Succeeded", 0, 5), run("beta", "Succeeded", 0, 5)]
    same_second[1]["metadata"]["creationTimestamp"] = \
        same_second[0]["metadata"]["creationTimestamp"].replace("Z", "+00:00")
    html = workflow_page(same_second)
    index_order = [s.name for s in indexed_runs.newest_first(
        [summarize(r) for r in same_second])]
    assert index_order == ["beta", "alpha"]
    assert re.findall(r'<tr data-run="([^"]+)"', html) == index_order


def test_the_stage_table_links_each_stage_by_the_shared_address() -> None:
    run_ = {"metadata": {"name": "r 1"}, "status": {"stages": {"a/b": {}}}}
    workflow = {"spec": {"stages": [{"name": "a/b"}]}}
    html = rendered("run/stages.html", page_context("p", "w", run_, workflow, [], now=NOW))
    assert f'href="{urls.stage_url("p", "w", "r 1", "a/b")}"' in html
