"""The stage panel's pure parts without a server: what it makes of a pod, a run and Events
(`cyclone.ui.stage_view`), the page stream's batching, and its templates rendered for empty,
normal and large data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from cyclone.engine.core.masking import Masker
from cyclone.server.artifacts.store import ArtifactInfo
from cyclone.ui import stage_view
from cyclone.ui.pages.stage_panel import sse_batches
from cyclone.ui.templating import environment

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "wf-build-1", "namespace": "cyclone-system",
                 "labels": {"stage.cyclone.dev/name": "build"}, "uid": "u", "resourceVersion": "9"},
    "spec": {
        "initContainers": [{"name": "csc-git", "image": "cyclone/git:1"}],
        "containers": [
            {"name": "c0", "image": "golang:1.22",
             "env": [{"name": "TOKEN", "value": "rendered-secret-value"},
                     {"name": "PLAIN", "value": "visible"},
                     {"name": "UPLOAD", "value": "cyu.system.c2lnbmF0dXJl"},
                     {"name": "DB", "value": "postgres://u:db-password-123@h/db"},
                     {"name": "REF", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            {"name": "wsc-docker", "image": "docker:dind"}]},
    "status": {
        "initContainerStatuses": [{"name": "csc-git", "state": {"terminated": {
            "exitCode": 0, "reason": "Completed", "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": "2026-01-01T00:00:02Z"}}}],
        "containerStatuses": [
            {"name": "c0", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}},
            {"name": "wsc-docker", "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}}}]},
}
STAGE = {"spec": {"pod": {
    "inputs": {"resources": [{"name": "src", "path": "/workspace/src"}],
               "arguments": [{"name": "GOAL", "value": "release"}, {"value": "nameless"}]},
    "spec": {"containers": [{"name": "c0", "env": [
        {"name": "TOKEN", "value": "${secrets.cyclone-system:creds/data.token}"}]}]}}}}


def test_containers_come_from_the_pod_with_states_and_then_from_stored_logs() -> None:
    rows = stage_view.container_rows(POD, ["c0", "csc-git", "gone"])
    assert [(r.name, r.state, r.exit_code, r.reason, r.init, r.sidecar, r.logged)
            for r in rows] == [
        ("csc-git", "terminated", 0, "Completed", True, True, True),
        ("c0", "terminated", 2, "Error", False, False, True),
        ("wsc-docker", "running", None, "", False, True, False),
        ("gone", "unknown", None, "", False, False, True)]
    assert stage_view.container_rows(None, []) == []
    waiting = {"spec": {"containers": [{"name": "c0"}]}, "status": {"containerStatuses": [
        {"name": "c0", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    assert stage_view.container_rows(waiting, [])[0].reason == "ImagePullBackOff"


def test_the_workload_log_is_shown_first_unless_another_container_is_asked_for() -> None:
    rows = stage_view.container_rows(POD, ["c0", "csc-git"])
    assert stage_view.default_container(rows, None) == "c0"
    assert stage_view.default_container(rows, "wsc-docker") == "wsc-docker"
    assert stage_view.default_container(rows, "unknown") == "c0"
    only_sidecar = stage_view.container_rows(None, ["csc-git"])
    assert stage_view.default_container(only_sidecar, None) == "csc-git"
    assert stage_view.default_container([], None) is None


def test_pod_yaml_hides_every_secret_value_and_keeps_references() -> None:
    text = stage_view.pod_yaml(POD, Masker([b"db-password-123"]), STAGE)
    assert "rendered-secret-value" not in text and "db-password-123" not in text
    assert "- name: TOKEN\n      value: '***'" in text
    assert "value: postgres://u:***@h/db" in text
    assert "value: visible" in text
    assert "cyu." not in text and "- name: UPLOAD\n      value: '***'" in text
    assert "secretKeyRef:\n          name: s\n          key: k" in text
    assert "status" not in text and "resourceVersion" not in text
    assert text.index("initContainers") < text.index("containers:\n  - name: c0")


def test_a_secret_value_split_by_yaml_quoting_is_still_hidden() -> None:
    secret = "line one of a key\nline two: with 'quotes'"
    pod = {"spec": {"containers": [{"name": "c0", "args": [secret]}]}}
    text = stage_view.pod_yaml(pod, Masker([secret]))
    assert "line one of a key" not in text and "with" not in text


def test_inputs_merge_workflow_globals_under_the_runs() -> None:
    workflow = {"spec": {"globalVariables": [{"name": "A", "value": "1"},
                                             {"name": "B", "value": "2"}]}}
    run = {"spec": {"globalVariables": [{"name": "B", "value": "run"}]}}
    inputs = stage_view.stage_inputs(STAGE, run, workflow)
    assert inputs["globals"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "run"}]
    assert inputs["arguments"] == [{"name": "GOAL", "value": "release"}]
    assert inputs["resources"] == [{"name": "src", "path": "/workspace/src"}]
    assert stage_view.stage_inputs(None, {}) == {"resources": [], "arguments": [],
                                                 "globals": []}


def test_stage_events_are_its_pods_and_the_runs_that_name_it() -> None:
    events = [
        {"involvedObject": {"kind": "Pod", "name": "wf-build-1"}, "reason": "Pulled"},
        {"involvedObject": {"kind": "Pod", "name": "wf-test-1"}, "reason": "Pulled"},
        {"involvedObject": {"kind": "WorkflowRun", "name": "r"}, "message": "stage build retried"},
        {"involvedObject": {"kind": "WorkflowRun", "name": "r"}, "message": "run started"}]
    found = stage_view.stage_events(events, "build", "wf-build-1")
    assert [e.get("reason") or e["message"] for e in found] == ["Pulled", "stage build retried"]
    assert stage_view.stage_events(events[:2], "build", None) == []


def test_a_stage_is_live_until_it_or_its_run_ends() -> None:
    running = {"status": {"phase": "Running"}}
    assert stage_view.stage_live(running, {"status": {"overall": {"phase": "Running"}}})
    assert stage_view.stage_live(None, {})
    assert not stage_view.stage_live({"status": {"phase": "Failed"}}, {})
    assert not stage_view.stage_live(running, {"status": {"overall": {"phase": "Cancelled"}}})


def test_an_ended_stage_is_followed_live_until_its_log_is_stored_whole() -> None:
    ended, run = {"status": {"phase": "Succeeded"}}, {"status": {"overall": {"phase": "Running"}}}
    assert stage_view.log_is_live(ended, run, False)
    assert not stage_view.log_is_live(ended, run, True)
    assert not stage_view.log_is_live(ended, run, None)
    assert stage_view.log_is_live({"status": {"phase": "Running"}}, run, True)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _events(*parts: bytes) -> bytes:
    async def collect() -> bytes:
        return b"".join([event async for event in sse_batches(_chunks(*parts))])
    return asyncio.run(collect())


def test_a_quiet_log_stream_sends_keep_alive_comments() -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"first\n"
        await asyncio.sleep(0.35)
        yield b"second\n"

    async def collect() -> list[bytes]:
        return [event async for event in sse_batches(slow(), keepalive=0.1)]

    events = asyncio.run(collect())
    assert events[0] == b"data: first\n\n" and events[-2:] == [
        b"data: second\n\n", b"event: end\ndata: \n\n"]
    assert 2 <= events.count(b": keep-alive\n\n") <= 4
    assert len(events) == 3 + events.count(b": keep-alive\n\n")


def test_the_page_stream_sends_whole_lines_in_batches_then_end() -> None:
    assert _events(b"a\nb\r\n", b"par", b"tial\n\n", b"tail") == (
        b"data: a\ndata: b\n\n" b"data: partial\ndata: \n\n" b"data: tail\n\n"
        b"event: end\ndata: \n\n")
    assert _events() == b"event: end\ndata: \n\n"
    big = b"".join(b"line %d\n" % i for i in range(100_000))
    events = _events(*(big[i:i + 65536] for i in range(0, len(big), 65536)))
    assert events.count(b"\n\n") < 200
    assert events.count(b"data: line ") == 100_000


def _page_context(**overrides: Any) -> dict[str, Any]:
    context = {
        "project": "p", "workflow": "w", "run": "r1", "stage": "build",
        "run_obj": {"status": {}}, "entry": {}, "phase": "Pending", "live": True,
        "containers": [], "container": None,
        "inputs": {"resources": [], "arguments": [], "globals": []},
        "outputs": [], "events": [], "pod_yaml": "", "pod_note": "the stage has no pod yet",
        "artifacts": [], "run_url": "/projects/p/workflows/w/runs/r1",
        "stage_url": "/projects/p/workflows/w/runs/r1/stages/build",
        "stream_url": "/ui/streams/logs/p/w/r1/build", "fragment": True,
        "request": SimpleNamespace(url=SimpleNamespace(path="/x")), "session": None,
        "csrf": "",
    }
    context.update(overrides)
    return context


def _render(template: str, **overrides: Any) -> str:
    return environment().get_template(template).render(_page_context(**overrides))


def test_the_panel_renders_for_a_stage_with_nothing_yet() -> None:
    html = _render("stage_panel.html")
    assert 'data-phase="Pending"' in html and 'data-live="true"' in html
    assert "No outputs yet." in html and "No events about this stage." in html
    assert "No pod to show: the stage has no pod yet." in html
    assert "No artifacts." in html and "data-log-container" not in html
    full = _render("stage.html", fragment=False)
    assert full.startswith("<!doctype html>") and "Back to run r1" in full


def test_the_panel_renders_a_finished_stage_escaping_every_value() -> None:
    rows = stage_view.container_rows(POD, ["c0"])
    html = _render(
        "stage_panel.html", phase="Failed", live=False, containers=rows, container="c0",
        entry={"status": {"phase": "Failed", "reason": "PodFailed",
                          "message": "<img src=x onerror=alert(1)>",
                          "startTime": "2026-01-01T00:00:00Z",
                          "lastTransitionTime": "2026-01-01T00:01:05Z"}, "attempts": 2},
        outputs=[{"key": "image", "value": "<script>x</script>"}],
        events=[{"type": "Warning", "reason": "BackOff", "message": "<b>m</b>",
                 "involvedObject": {"kind": "Pod", "name": "wf-build-1"}, "count": 3}],
        pod_yaml="spec: {}\nnote: '<tag>'\n",
        artifacts=[ArtifactInfo("out.tar.gz", 12, "2026-01-01T00:00:00Z", None, "build")])
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "&lt;b&gt;m&lt;/b&gt;" in html and "&lt;tag&gt;" in html
    assert "1m5s" in html and "attempt 2" in html
    assert html.count("<option ") == 3 and 'value="c0" selected' in html
    assert 'href="/projects/p/workflows/w/runs/r1/stages/build/log?container=c0"' in html
    assert 'href="/projects/p/workflows/w/runs/r1/artifacts/out.tar.gz" download' in html


def test_the_panel_renders_large_data_quickly() -> None:
    many = [stage_view.ContainerRow(f"c{i}", "img", "running", None, "", None, None, False,
                                    False, True) for i in range(300)]
    started = time.perf_counter()
    html = _render(
        "stage_panel.html", containers=many, container="c0",
        outputs=[{"key": f"k{i}", "value": "v" * 100} for i in range(2000)],
        events=[{"reason": f"R{i}", "message": "m", "involvedObject": {}}
                for i in range(2000)],
        pod_yaml="x: y\n" * 50_000,
        artifacts=[ArtifactInfo(f"a{i}.tgz", i, "2026-01-01T00:00:00Z") for i in range(500)])
    elapsed = time.perf_counter() - started
    assert html.count("<tr data-output=") == 2000
    assert html.count('class="event-normal"') == 2000
    assert html.count("<option ") == 300
    assert elapsed < 2, elapsed


@pytest.mark.parametrize("hits", [0, 1, 500])
def test_search_results_render_for_no_some_and_many_hits(hits: int) -> None:
    from cyclone.ui.log_search import search_logs

    lines = [f"needle <{i}>" for i in range(hits)] or ["nothing"]
    result = search_logs([("build", "c0", lines), ("test", "csc-git", ["needle"])],
                         "needle", per_log=hits or 1)
    html = _render("logs/search_results.html", result=result, message="", q="needle",
                   stage_url=lambda s: f"/r/stages/{s}", in_all=500)
    assert html.count('class="ln mono"') == result.total
    assert "&lt;0&gt;" in html if hits else "1 matching line in 1 log" in html
    assert 'href="/r/stages/test?container=csc-git#L1"' in html or hits >= 500


def test_a_stage_is_the_runs_by_its_entry_its_spec_or_its_workflow_until_entries_exist():
    workflow = {"spec": {"stages": [{"name": "build"}, {"name": "test"}]}}
    fresh = {"spec": {"workflowRef": {"name": "pipe"}}}
    assert stage_view.stage_of_run(fresh, workflow, "test")
    assert not stage_view.stage_of_run(fresh, workflow, "deploy")
    assert not stage_view.stage_of_run(fresh, None, "test")
    started = {**fresh, "status": {"stages": {"build": {"status": {"phase": "Running"}}}}}
    assert stage_view.stage_of_run(started, None, "build")
    assert not stage_view.stage_of_run(started, workflow, "test")
    inline = {"spec": {"stages": [{"name": "lint"}]}, "status": {"stages": {"x": {}}}}
    assert stage_view.stage_of_run(inline, None, "lint")
