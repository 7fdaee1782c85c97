"""The workflow and project pages' logic without a server: cron fire times, webhook URLs,
the "Run" form and the run it submits, the apply page's reading of YAML, and the templates
rendered for empty, normal and large data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from cyclone.ui import workflow_view as view
from cyclone.ui.apply_docs import ManifestError, parse_documents, placement
from cyclone.ui.pages.projects import project_rows, stage_users, workflow_rows
from cyclone.ui.run_index import summarize
from cyclone.ui.templating import render

NOW = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)


def cron(schedule: str, timezone: str | None = None, **spec: object) -> dict:
    return {"metadata": {"name": "nightly"},
            "spec": {"type": "Cron", "cron": {"schedule": schedule, "timezone": timezone},
                     **spec}}


def test_a_cron_trigger_fires_next_at_its_next_three_scheduled_times() -> None:
    fires = view.next_fires(cron("*/15 * * * *"), NOW)
    assert fires.times == (datetime(2026, 3, 1, 10, 15, tzinfo=UTC),
                           datetime(2026, 3, 1, 10, 30, tzinfo=UTC),
                           datetime(2026, 3, 1, 10, 45, tzinfo=UTC))
    assert fires.zone == "UTC" and fires.problem == ""


def test_a_cron_schedule_is_read_in_its_time_zone() -> None:
    fires = view.next_fires(cron("0 2 * * *", "Europe/Paris"), NOW)
    assert fires.times[0] == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert fires.local[0] == "2026-03-02 02:00:00 CET"
    assert fires.zone == "Europe/Paris"


def test_a_six_field_schedule_has_seconds_first() -> None:
    fires = view.next_fires(cron("*/20 * * * * *"), NOW, count=2)
    assert fires.times == (NOW + timedelta(seconds=10), NOW + timedelta(seconds=30))


@pytest.mark.parametrize(("trigger", "problem"), [
    (cron("not a schedule"), "must have 5 fields"),
    (cron("0 2 * * *", "Mars/Olympus"), "unknown time zone"),
    (cron("0 2 * * *", disabled=True), "disabled"),
])
def test_a_trigger_that_cannot_fire_says_why(trigger: dict, problem: str) -> None:
    fires = view.next_fires(trigger, NOW)
    assert fires.times == () and problem in fires.problem


def test_an_scm_trigger_shows_its_integrations_webhook_url() -> None:
    trigger = {"metadata": {"name": "on-push", "labels": {
        "workflowtrigger.cyclone.dev/event-source": "github"}},
        "spec": {"type": "SCM", "scm": {"repo": "o/r"}}}
    assert view.trigger_webhook_url(trigger, "http://ci.example:7099/", "cyclone-acme") == (
        "http://ci.example:7099/apis/v1alpha1/tenants/acme/webhook"
        "?sourceType=SCM&integration=github")
    assert view.trigger_webhook_url(cron("* * * * *"), "http://x/", "cyclone-a") is None
    no_source = {"metadata": {"name": "t"}, "spec": {"type": "SCM", "scm": {"repo": "o/r"}}}
    assert view.trigger_webhook_url(no_source, "http://x/", "cyclone-a") is None


WORKFLOW = {"metadata": {"name": "build"}, "spec": {
    "stages": [{"name": "compile"}, {"name": "test", "depends": ["compile"]}],
    "globalVariables": [{"name": "CHANNEL", "value": "beta"}]}}
STAGES = {
    "compile": {"spec": {"pod": {"inputs": {
        "arguments": [{"name": "target", "value": "linux", "description": "OS"},
                      {"name": "token", "required": True}],
        "resources": [{"name": "src", "path": "/src"}]}}}},
    "test": {"spec": {"pod": {"inputs": {"resources": [{"name": "src"}, {"name": "image"}]}}}},
}
RESOURCES = {"src": {"spec": {"type": "Git", "parameters": [
    {"name": "SCM_REPO", "value": "acme/app"}, {"name": "SCM_REVISION", "value": "main"}]}},
    "image": {"spec": {"type": "Image", "parameters": [{"name": "TAG", "value": "1"}]}}}


def test_the_run_form_has_each_stages_arguments_the_variables_and_one_git_picker() -> None:
    form = view.run_form(WORKFLOW, STAGES, RESOURCES, "github")
    assert [s.stage for s in form.stages] == ["compile"]
    target, token = form.stages[0].fields
    assert (target.key, target.default, target.description) == ("p:compile:target", "linux",
                                                                 "OS")
    assert token.required and token.default == ""
    assert [(v.key, v.default) for v in form.variables] == [("v:CHANNEL", "beta")]
    assert form.git == (view.GitInput("r:src", "src", "acme/app", "main", "github"),)


def test_a_submitted_form_sends_only_what_differs_from_the_defaults() -> None:
    form = view.run_form(WORKFLOW, STAGES, RESOURCES)
    wanted = view.run_request(form, {"p:compile:target": "linux", "p:compile:token": "s3",
                                     "v:CHANNEL": "beta", "r:src": "release-1.4",
                                     "alias": "Release 1.4"})
    assert wanted.problems == []
    assert wanted.body == {
        "metadata": {"annotations": {"cyclone.dev/alias": "Release 1.4"}},
        "spec": {"stages": [{"name": "compile", "parameters": [
            {"name": "token", "value": "s3"}]}],
            "resources": [{"name": "src", "parameters": [
                {"name": "SCM_REVISION", "value": "release-1.4"}]}]}}


def test_a_required_argument_left_empty_is_a_problem_of_the_form() -> None:
    form = view.run_form(WORKFLOW, STAGES, RESOURCES)
    wanted = view.run_request(form, {"p:compile:token": "  ", "v:CHANNEL": "stable"})
    assert wanted.problems == ["stage compile: parameter token is required"]
    assert wanted.values["v:CHANNEL"] == "stable"


def test_pasted_yaml_is_read_into_objects_lists_unpacked() -> None:
    objects = parse_documents("kind: Project\nmetadata: {name: a}\n---\n"
                              "kind: List\nitems:\n- {kind: Stage, metadata: {name: s}}\n---\n")
    assert [o["kind"] for o in objects] == ["Project", "Stage"]


@pytest.mark.parametrize(("text", "message"), [
    ("kind: [", "not valid YAML"),
    ("- just\n- a list\n", "document 1 is not an object"),
    ("# nothing\n", "no objects"),
])
def test_unreadable_yaml_is_one_line(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_documents(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_object_goes_in_the_project_of_its_label_and_the_workflow_it_names() -> None:
    run = {"kind": "WorkflowRun", "metadata": {"name": "r", "labels": {
        "project.cyclone.dev/name": "p"}}, "spec": {"workflowRef": {"name": "w"}}}
    assert placement(run) == ("p", "w")
    assert placement({"kind": "Project", "metadata": {"name": "p"}}) == ("p", "")


# Templates


def page_request(path: str) -> Request:
    request = Request({"type": "http", "method": "GET", "path": path, "headers": [],
                       "query_string": b"", "server": ("ui.test", 80), "scheme": "http",
                       "root_path": ""})
    request.state.ui_session = SimpleNamespace(tenant="acme", admin=False, csrf="csrf-token")
    return request


def rendered(template: str, context: dict, path: str = "/projects") -> str:
    response = render(page_request(path), template, context)
    assert response.status_code == 200
    return response.body.decode()


def run(name: str, phase: str, minute: int, seconds: int, workflow: str = "build") -> dict:
    start = NOW - timedelta(days=1) + timedelta(minutes=minute)
    iso = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": name, "creationTimestamp": iso, "labels": {
        "project.cyclone.dev/name": "app", "workflow.cyclone.dev/name": workflow}},
        "status": {"overall": {"phase": phase, "startTime": iso, "lastTransitionTime": end}}}


def workflow_page(runs: list[dict], workflow: dict = WORKFLOW, triggers: list[dict] = ()
                  ) -> str:
    context = view.page_context("app", workflow, runs, triggers, STAGES,
                                view.run_form(workflow, STAGES, RESOURCES),
                                base_url="http://ui.test/", namespace="cyclone-acme", now=NOW)
    return rendered("workflow.html", context, "/projects/app/workflows/build")


def test_the_workflow_page_renders_with_no_runs_and_no_stages() -> None:
    html = workflow_page([], {"metadata": {"name": "empty"}, "spec": {}})
    assert "has no stages yet" in html and "No runs yet" in html
    assert "takes no parameters" in html


def test_the_workflow_page_shows_the_dag_history_triggers_and_form() -> None:
    runs = [run("build-1", "Succeeded", 0, 65), run("build-2", "Failed", 5, 12)]
    html = workflow_page(runs, triggers=[cron("0 2 * * *", "Europe/Paris")])
    assert re.findall(r'data-stage="([^"]+)"', html) == ["compile", "test"]
    assert re.findall(r'<rect class="spark-bar phase-(\w+)" data-run="([^"]+)"', html) == [
        ("succeeded", "build-1"), ("failed", "build-2")]
    assert 'href="/projects/app/workflows/build/runs/build-2"' in html
    assert re.findall(r'href="([^"]+)" data-compare', html) == [
        "/projects/app/workflows/build/compare?a=build-1&amp;b=build-2"]
    assert "1m5s" in html and "12s" in html
    assert html.count("<li data-fire=") == 3 and "Europe/Paris" in html
    assert 'name="p:compile:target" value="linux"' in html
    assert 'hx-get="/projects/app/workflows/build/revisions?resource=src"' in html
    assert "depends:\n    - compile" in html


def test_the_workflow_page_with_300_runs_draws_30_bars_and_lists_50() -> None:
    runs = [run(f"build-{i:03d}", "Succeeded" if i % 7 else "Failed", i, 30 + i)
            for i in range(300)]
    html = workflow_page(runs)
    bars = re.findall(r'class="spark-bar[^"]*" data-run="([^"]+)"', html)
    assert bars == [f"build-{i:03d}" for i in range(270, 300)]
    assert html.count('<tr data-run="') == view.HISTORY_ROWS
    assert "All 300 runs" in html


def test_tenant_text_is_escaped_on_the_workflow_page() -> None:
    evil = {"metadata": {"name": "build"}, "spec": {
        "stages": [{"name": "compile"}],
        "globalVariables": [{"name": "X", "value": "<script>alert(1)</script>"}]}}
    html = workflow_page([], evil)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_projects_page_renders_empty_and_with_rows() -> None:
    assert "No projects in tenant" in rendered("projects.html", {"rows": []})
    projects = [{"metadata": {"name": f"p{i}", "annotations": {
        "cyclone.dev/description": "team <b>" + str(i) + "</b>"}}} for i in range(3)]
    workflows = [{"metadata": {"name": "w", "labels": {"project.cyclone.dev/name": "p1"}}}]
    html = rendered("projects.html", {"rows": project_rows(
        projects, workflows, [summarize(run("w-1", "Failed", 0, 3) | {"metadata": {
            "name": "w-1", "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"project.cyclone.dev/name": "p1", "workflow.cyclone.dev/name": "w"}}})])})
    assert re.findall(r'data-project="([^"]+)"', html) == ["p0", "p1", "p2"]
    assert "team &lt;b&gt;1&lt;/b&gt;" in html
    assert 'href="/projects/p1/workflows/w/runs/w-1"' in html and 'data-phase="Failed"' in html


def test_the_project_page_renders_empty_and_with_200_workflows() -> None:
    empty = {"project": "app", "description": "", "rows": [], "stages": [], "resources": [],
             "triggers": []}
    assert "No workflows in this project yet" in rendered("project.html", empty)
    workflows = [{"metadata": {"name": f"wf-{i:03d}"}, "spec": {"stages": [{"name": "a"}]}}
                 for i in range(200)]
    runs = [run(f"wf-001-{i}", "Succeeded" if i < 8 else "Failed", i, 10, "wf-001")
            for i in range(12)]
    triggers = [cron("*/15 * * * *") | {"metadata": {"name": "t", "labels": {
        "workflow.cyclone.dev/name": "wf-001"}}}]
    rows = workflow_rows(workflows, [summarize(r) for r in runs], triggers, NOW)
    stages = [{"metadata": {"name": "a"}}, {"metadata": {"name": "unused"}}]
    html = rendered("project.html", {**empty, "rows": rows, "stages": stages,
                                     "stage_users": stage_users(workflows[:2])})
    assert html.count('<tr data-workflow="') == 200
    second = html.split('<tr data-workflow="wf-001">', 1)[1].split("</tr>", 1)[0]
    assert "6/10" in second and "2026-03-01 10:15:00 UTC" in second
    assert "wf-001-11" in second
    used = html.split('data-stage-object="a">', 1)[1].split("</li>", 1)[0]
    assert re.findall(r'href="([^"]+)"', used) == ["/projects/app/workflows/wf-000#stage-a",
                                                   "/projects/app/workflows/wf-001#stage-a"]
    assert "href" not in html.split('data-stage-object="unused">', 1)[1].split("</li>", 1)[0]


def test_the_apply_page_renders_blank_and_with_results() -> None:
    from cyclone.ui.apply_docs import Outcome

    assert 'name="yaml"' in rendered("apply.html", {"text": "", "outcomes": None,
                                                    "problem": ""}, "/apply")
    html = rendered("apply.html", {
        "text": "kind: Stage", "problem": "", "dry_run": True, "failed": True,
        "outcomes": [Outcome(1, "Project", "app", "app", done="would be created"),
                     Outcome(2, "Stage", "s", "app", problems=[("spec.pod", "required")])]},
        "/apply")
    assert 'data-doc="1" data-ok="true"' in html and 'data-doc="2" data-ok="false"' in html
    assert "<code>spec.pod</code>: required" in html
