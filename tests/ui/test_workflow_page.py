"""The workflow page in a real Chromium against the live `cyclone up`: the DAG, YAML,
triggers with their next fire times and webhook URL, the "Run" form starting a run with
the parameters given, its refusals shown in the form, and the SCM revision picker."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp, cli_ok
from support.ui import browser_sign_in, new_tenant, screenshot, signed_in_client

PROJECT = "wfpage"
MANIFEST = f"""\
kind: Project
metadata: {{name: {PROJECT}}}
---
kind: Resource
metadata: {{name: src, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  type: Git
  parameters:
  - {{name: SCM_URL, value: "https://scm.invalid/acme/app.git"}}
  - {{name: SCM_REPO, value: acme/app}}
  - {{name: SCM_REVISION, value: main}}
---
kind: Stage
metadata: {{name: greet, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    inputs:
      arguments:
      - {{name: greeting, value: hello, description: What to say}}
      - {{name: token, required: true}}
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo {{{{ greeting }}}}"]
---
kind: Stage
metadata: {{name: publish, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo done"]
---
kind: Stage
metadata: {{name: fetch, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    inputs:
      resources: [{{name: src, path: /src}}]
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "ls /src"]
---
kind: Workflow
metadata: {{name: hello, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages:
  - {{name: greet}}
  - {{name: publish, depends: [greet]}}
  globalVariables: [{{name: CHANNEL, value: beta}}]
---
kind: Workflow
metadata: {{name: checkout, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: fetch}}]
---
kind: WorkflowTrigger
metadata: {{name: nightly, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  workflowRef: {{name: hello}}
  type: Cron
  cron: {{schedule: "0 2 * * *", timezone: Europe/Paris}}
  stages: [{{name: greet, parameters: [{{name: token, value: t}}]}}]
---
kind: WorkflowTrigger
metadata:
  name: on-push
  labels: {{project.cyclone.dev/name: {PROJECT}, workflowtrigger.cyclone.dev/event-source: github}}
spec:
  workflowRef: {{name: hello}}
  type: SCM
  scm: {{repo: acme/app, push: {{enabled: true}}}}
"""


@pytest.fixture(scope="module")
def workflows(ui_up: LiveUp) -> str:
    cli_ok(ui_up, "apply", "-f", "-", input=MANIFEST)
    return f"{ui_up.url}/projects/{PROJECT}/workflows"


def test_the_page_shows_the_dag_yaml_triggers_and_webhook_url(admin_page: Any,
                                                                workflows: str) -> None:
    page = admin_page
    page.goto(f"{workflows}/hello")
    nodes = page.locator("#workflow-dag g.dag-node")
    assert nodes.evaluate_all("els => els.map(e => e.dataset.stage)") == ["greet", "publish"]
    assert page.locator('path.dag-edge[data-from="greet"][data-to="publish"]').count() == 1
    assert "- name: publish" in page.locator('pre[data-yaml="workflow"]').inner_text()
    nightly = page.locator('[data-trigger="nightly"]')
    assert nightly.locator("[data-timezone]").inner_text() == "Europe/Paris"
    fires = nightly.locator("li[data-fire]")
    assert fires.count() == 3
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT0[01]:00:00Z", f)
               for f in fires.evaluate_all("els => els.map(e => e.dataset.fire)"))
    assert "02:00:00 CE" in fires.first.inner_text()
    url = page.locator('[data-trigger="on-push"] input[data-webhook-url]').input_value()
    assert url == (f"{workflows.split('/projects')[0]}/apis/v1alpha1/tenants/system/webhook"
                   "?sourceType=SCM&integration=github")
    assert page.locator("a[data-edit]").get_attribute("href").endswith("/hello/edit")
    screenshot(page, "workflow")
    page.click('#workflow-dag [data-stage="greet"]')
    assert page.locator("details#stage-greet").get_attribute("open") is not None
    assert "greeting" in page.locator("details#stage-greet pre").inner_text()


def test_run_with_a_parameter_starts_a_run_and_lands_on_its_page(
        admin_page: Any, workflows: str, admin_api: httpx.Client) -> None:
    page = admin_page
    page.goto(f"{workflows}/hello#run")
    assert page.input_value('input[name="p:greet:greeting"]') == "hello"
    page.fill('input[name="p:greet:greeting"]', "bonjour")
    page.fill('input[name="p:greet:token"]', "s3cret")
    page.fill('input[name="v:CHANNEL"]', "stable")
    page.fill("input[name=alias]", "First try")
    page.click("button[data-run-submit]")
    page.wait_for_url(re.compile(rf"{re.escape(workflows)}/hello/runs/first-try-\w+$"))
    name = page.url.rsplit("/", 1)[1]
    run = admin_api.get(f"/apis/v1alpha1/projects/{PROJECT}/workflows/hello/"
                        f"workflowruns/{name}").json()
    assert run["spec"]["stages"] == [{"name": "greet", "parameters": [
        {"name": "greeting", "value": "bonjour"}, {"name": "token", "value": "s3cret"}]}]
    assert run["spec"]["globalVariables"] == [{"name": "CHANNEL", "value": "stable"}]
    assert run["metadata"]["annotations"]["cyclone.dev/alias"] == "First try"
    assert run["metadata"]["annotations"]["workflowrun.cyclone.dev/started-by"] == (
        "the admin via the web UI")
    assert page.locator("[data-run-started-by]").inner_text() == "the admin via the web UI"


def test_a_missing_required_parameter_is_shown_in_the_form(admin_page: Any, workflows: str,
                                                          admin_api: httpx.Client) -> None:
    page = admin_page
    page.goto(f"{workflows}/hello")
    before = admin_api.get(f"/apis/v1alpha1/projects/{PROJECT}/workflows/hello/workflowruns")
    page.fill('input[name="p:greet:greeting"]', "kept")
    page.click("button[data-run-submit]")
    problem = page.locator("[data-run-problem]")
    assert problem.inner_text() == "stage greet: parameter token is required"
    assert page.input_value('input[name="p:greet:greeting"]') == "kept"
    after = admin_api.get(f"/apis/v1alpha1/projects/{PROJECT}/workflows/hello/workflowruns")
    assert after.json()["metadata"]["total"] == before.json()["metadata"]["total"]
    screenshot(page, "workflow-run-refused")


def test_a_run_the_server_refuses_is_one_line_in_the_form(workflows: str,
                                                         ui_up: LiveUp) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        form = {"csrf": client.csrf, "p:greet:token": "t", "alias": "twice"}
        first = client.post(f"/projects/{PROJECT}/workflows/hello/run", data=form)
        assert first.status_code == 303
        assert first.headers["location"] == f"/projects/{PROJECT}/workflows/hello/runs/twice"
        again = client.post(f"/projects/{PROJECT}/workflows/hello/run", data=form)
        assert again.status_code == 409
        problem = again.text.split("data-run-problem>", 1)[1].split("</div>", 2)[0]
        assert "workflowrun &#39;twice&#39; already exists" in problem
        assert 'name="alias" value="twice"' in again.text
        assert "Traceback" not in again.text


def test_an_unreachable_scm_leaves_a_free_text_revision_and_says_why(
        admin_page: Any, workflows: str, admin_api: httpx.Client) -> None:
    made = admin_api.post("/apis/v1alpha1/integrations", json={
        "metadata": {"name": "wfpage-scm"},
        "spec": {"type": "SCM", "scm": {"type": "GitHub", "server": "https://scm.invalid",
                                        "token": "t"}}})
    assert made.status_code == 201, made.text
    page = admin_page
    page.goto(f"{workflows}/checkout")
    message = page.locator(".revision .revision-problem")
    message.wait_for()
    assert "cannot list branches of acme/app" in message.inner_text()
    assert "\n" not in message.inner_text()
    assert page.locator('.revision input[name="r:src"]').get_attribute("placeholder") == "main"


class FakeGitHub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        answers = {"/api/v3/repos/acme/app/branches": [{"name": "main"}, {"name": "dev"}],
                   "/api/v3/repos/acme/app/tags": [{"name": "v1.0"}]}
        body = answers.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_github() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_revision_picker_lists_branches_and_tags_and_the_run_gets_the_pick(
        context: Any, ui_up: LiveUp, admin_api: httpx.Client, fake_github: str) -> None:
    name, token = new_tenant(admin_api, "wfp")
    tenant = admin_api.get(f"/apis/v1alpha1/tenants/{name}").json()
    tenant["spec"]["allowLocalAddresses"] = True
    assert admin_api.put(f"/apis/v1alpha1/tenants/{name}", json={
        "metadata": tenant["metadata"], "spec": tenant["spec"]}).status_code == 200
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{ui_up.url}/apis/v1alpha1", headers=headers) as api:
        assert api.post("/integrations", json={"metadata": {"name": "gh"}, "spec": {
            "type": "SCM", "scm": {"type": "GitHub", "server": fake_github,
                                   "token": "t"}}}).status_code == 201
    page = context.new_page()
    browser_sign_in(page, ui_up.url, token)
    page.goto(f"{ui_up.url}/apply")
    page.fill("textarea[name=yaml]", MANIFEST)
    page.click("button[value=apply]")
    assert page.locator('.apply-results tr[data-ok="false"]').count() == 0
    page.goto(f"{ui_up.url}/projects/{PROJECT}/workflows/checkout")
    picker = page.locator('select[name="r:src"]')
    picker.wait_for()
    options = picker.locator("option").evaluate_all("els => els.map(e => e.value)")
    assert options == ["", "main", "dev", "v1.0"]
    picker.select_option("v1.0")
    screenshot(page, "workflow-revision-picker")
    page.click("button[data-run-submit]")
    page.wait_for_url(re.compile(r".*/workflows/checkout/runs/[\w-]+$"))
    with httpx.Client(base_url=f"{ui_up.url}/apis/v1alpha1", headers=headers) as api:
        run = api.get(f"/projects/{PROJECT}/workflows/checkout/workflowruns/"
                      f"{page.url.rsplit('/', 1)[1]}").json()
        assert run["spec"]["resources"] == [{"name": "src", "parameters": [
            {"name": "SCM_REVISION", "value": "v1.0"}]}]
        api.put(f"/projects/{PROJECT}/workflows/checkout/workflowruns/"
                f"{page.url.rsplit('/', 1)[1]}/stop")
