"""The workflow editor's routes on the real server app (embedded cluster, in process): each
action re-renders the page from the state the form carries, validation is the API's, and
Save writes the Stage and Workflow objects."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.ui import page_csrf

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app
from cyclone.ui.app import mount_ui

API = "/apis/v1alpha1"
ADMIN = {"Authorization": "Bearer admin"}


def _sign_in(client: TestClient, token: str) -> None:
    form = client.get("/login").text
    csrf = page_csrf(form)
    assert client.post("/login", data={"token": token, "csrf": csrf}).status_code == 303


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("editor")
    app = create_app(cluster=EmbeddedCluster(tmp / "c.db"), data_dir=tmp,
                     admin_token="admin", provisioning=False)
    mount_ui(app, "admin")
    return app


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        _sign_in(client, "admin")
        yield client


def make_workflow(client: TestClient, project: str) -> None:
    """Project `project` with stages {project}-a, -b, -c and workflow {project}-w:
    a → b, a → c (names are unique per tenant)."""
    assert client.post(f"{API}/projects", json={"metadata": {"name": project}},
                       headers=ADMIN).status_code == 201
    for stage in "abc":
        response = client.post(f"{API}/projects/{project}/stages", headers=ADMIN, json={
            "metadata": {"name": f"{project}-{stage}"},
            "spec": {"pod": {"spec": {"containers": [
                {"image": "alpine:3.20", "command": ["sh", "-c", f"echo {stage}"]}]}}}})
        assert response.status_code == 201, response.text
    a, b, c = (f"{project}-{s}" for s in "abc")
    response = client.post(f"{API}/projects/{project}/workflows", headers=ADMIN, json={
        "metadata": {"name": f"{project}-w"},
        "spec": {"stages": [{"name": a}, {"name": b, "depends": [a]},
                            {"name": c, "depends": [a]}]}})
    assert response.status_code == 201, response.text


class Editor:
    """The editor page of one workflow, driven as its form is."""

    def __init__(self, client: TestClient, project: str) -> None:
        self.client = client
        self.url = f"/projects/{project}/workflows/{project}-w/edit"
        self.response = client.get(self.url)
        assert self.response.status_code == 200, self.response.text

    @property
    def text(self) -> str:
        return self.response.text

    def hidden(self, name: str) -> str:
        found = re.search(rf'name="{name}" value="([^"]*)"', self.text)
        assert found, f"no hidden field {name}"
        return html.unescape(found.group(1))

    def post(self, action: str, **fields: str) -> Any:
        data = {"csrf": self.hidden("csrf"), "state": self.hidden("state"), "action": action,
                **fields}
        self.response = self.client.post(self.url, data=data)
        return self.response

    def problems_of(self, stage: str) -> str:
        found = re.search(rf'data-editor-problem="{re.escape(stage)}">(.*?)</td>', self.text,
                          re.S)
        assert found, f"no row for {stage}"
        return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).strip()

    def nodes(self) -> list[str]:
        found = re.findall(r'class="dag-node[^"]*"\s+data-stage="([^"]*)"', self.text)
        return [html.unescape(n) for n in found]


def test_the_editor_draws_the_workflow_with_connection_handles(client: TestClient) -> None:
    make_workflow(client, "ed-draw")
    page = Editor(client, "ed-draw")
    assert sorted(page.nodes()) == ["ed-draw-a", "ed-draw-b", "ed-draw-c"]
    assert page.text.count("data-dag-handle") == 3
    assert 'data-from="ed-draw-a" data-to="ed-draw-b"' in page.text
    assert "data-no-changes" in page.text and "data-editor-save disabled" in page.text
    assert 'value="shell"' in page.text, "the built-in templates are offered"


def test_a_stage_added_from_a_template_connected_and_edited_is_saved(client: TestClient
                                                                     ) -> None:
    make_workflow(client, "ed-save")
    page = Editor(client, "ed-save")
    page.post("add-template", template="shell", new_name="ed-save-lint")
    assert page.response.status_code == 200
    assert "ed-save-lint" in page.nodes()
    assert page.hidden("fields_for") == "ed-save-lint"
    page.post("connect", connect_from="ed-save-lint", connect_to="ed-save-b",
              fields_for="ed-save-lint", f_image="busybox:1.36",
              f_command="sh\n-c\nmake lint", f_env="MODE=strict", f_arguments="",
              f_args="", f_outputs="report=/tmp/report.txt")
    assert page.response.status_code == 200
    assert 'data-from="ed-save-lint" data-to="ed-save-b"' in page.text
    assert 'data-diff="Workflow ed-save-w"' in page.text
    assert 'data-diff="Stage ed-save-lint (new)"' in page.text
    assert '<span class="diff-add">+    - ed-save-lint</span>' in page.text
    assert client.get(f"{API}/projects/ed-save/stages/ed-save-lint",
                      headers=ADMIN).status_code == 404, "nothing is stored before Save"

    page.post("save")
    assert page.response.status_code == 303, page.text
    assert page.response.headers["location"].endswith("/edit?saved=1")
    workflow = client.get(f"{API}/projects/ed-save/workflows/ed-save-w", headers=ADMIN).json()
    assert workflow["spec"]["stages"] == [
        {"name": "ed-save-a"}, {"name": "ed-save-b", "depends": ["ed-save-a", "ed-save-lint"]},
        {"name": "ed-save-c", "depends": ["ed-save-a"]}, {"name": "ed-save-lint"}]
    stage = client.get(f"{API}/projects/ed-save/stages/ed-save-lint", headers=ADMIN).json()
    assert stage["metadata"]["labels"]["project.cyclone.dev/name"] == "ed-save"
    assert stage["spec"]["pod"]["spec"]["containers"] == [
        {"image": "busybox:1.36", "command": ["sh", "-c", "make lint"],
         "env": [{"name": "MODE", "value": "strict"}]}]
    assert stage["spec"]["pod"]["outputs"] == {
        "artifacts": [{"name": "report", "path": "/tmp/report.txt"}]}
    saved = client.get(page.response.headers["location"])
    assert "data-editor-saved" in saved.text and "data-no-changes" in saved.text


def test_a_cycle_is_shown_next_to_its_stage_and_cannot_be_saved(client: TestClient) -> None:
    make_workflow(client, "ed-cycle")
    page = Editor(client, "ed-cycle")
    page.post("connect", connect_from="ed-cycle-c", connect_to="ed-cycle-a")
    assert page.response.status_code == 200
    assert "cycle ed-cycle-a -> ed-cycle-c -> ed-cycle-a" in page.problems_of("ed-cycle-a")
    assert 'class="dag-node invalid"' in page.text
    assert '<path class="dag-edge dropped" data-from="ed-cycle-c" data-to="ed-cycle-a"' \
        in page.text, "the edge closing the cycle is drawn"
    assert "data-editor-save disabled" in page.text
    page.post("save")
    assert page.response.status_code == 422
    assert "fix the problems shown before saving" in page.text
    workflow = client.get(f"{API}/projects/ed-cycle/workflows/ed-cycle-w", headers=ADMIN).json()
    assert workflow["spec"]["stages"][0] == {"name": "ed-cycle-a"}

    page.post("disconnect:ed-cycle-c>ed-cycle-a")
    assert page.problems_of("ed-cycle-a") == ""
    assert "data-no-changes" in page.text


def test_a_stage_field_that_does_not_parse_is_shown_at_the_field_as_typed(client: TestClient
                                                                          ) -> None:
    make_workflow(client, "ed-field")
    page = Editor(client, "ed-field")
    page.post("select:ed-field-b")
    page.post("remove:ed-field-c", fields_for="ed-field-b", f_image="alpine:3.20",
              f_command="sh\n-c\necho b", f_env="JUST-A-WORD", f_args="", f_arguments="",
              f_outputs="")
    assert 'data-field-problem="env"' in page.text
    assert "env, line 1: write NAME=VALUE, got &#39;JUST-A-WORD&#39;" in page.text
    assert ">JUST-A-WORD</textarea>" in page.text
    assert "ed-field-c" in page.nodes(), "the action waits until the form is right"


def test_a_new_stage_is_renamed_from_its_form_and_a_bad_name_shown_at_the_field(
        client: TestClient) -> None:
    make_workflow(client, "ed-rename")
    page = Editor(client, "ed-rename")
    page.post("add-template", template="shell", new_name="ed-rename-x")
    fields = {"fields_for": "ed-rename-x", "f_image": "busybox", "f_command": "true",
              "f_args": "", "f_env": "", "f_arguments": "", "f_outputs": ""}
    page.post("connect", connect_from="ed-rename-x", connect_to="ed-rename-b",
              f_name="ed-rename-x", **fields)
    page.post("apply", f_name="ed-rename-lint", **fields)
    assert "ed-rename-lint" in page.nodes() and "ed-rename-x" not in page.nodes()
    assert 'data-from="ed-rename-lint" data-to="ed-rename-b"' in page.text
    page.post("apply", f_name="ed-rename-a", **{**fields, "fields_for": "ed-rename-lint"})
    assert 'data-field-problem="name"' in page.text
    assert "a stage named &#39;ed-rename-a&#39; already exists" in page.text
    page.post("select:ed-rename-a")
    assert 'name="f_name"' not in page.text, "a stored stage keeps its name"


def test_a_stage_is_marked_trivial_from_its_form(client: TestClient) -> None:
    make_workflow(client, "ed-trivial")
    page = Editor(client, "ed-trivial")
    page.post("select:ed-trivial-c")
    assert 'name="f_trivial" value="1">' in page.text
    fields = {"fields_for": "ed-trivial-c", "f_image": "alpine:3.20",
              "f_command": "sh\n-c\necho c", "f_args": "", "f_env": "", "f_arguments": "",
              "f_outputs": ""}
    page.post("apply", f_trivial="1", **fields)
    assert 'name="f_trivial" value="1" checked>' in page.text
    assert '<span class="diff-add">+    trivial: true</span>' in page.text
    page.post("save")
    assert page.response.status_code == 303
    workflow = client.get(f"{API}/projects/ed-trivial/workflows/ed-trivial-w",
                          headers=ADMIN).json()
    assert workflow["spec"]["stages"][2] == {"name": "ed-trivial-c",
                                             "depends": ["ed-trivial-a"], "trivial": True}


def test_removing_a_stage_takes_it_out_of_every_dependency(client: TestClient) -> None:
    make_workflow(client, "ed-remove")
    page = Editor(client, "ed-remove")
    page.post("remove:ed-remove-a")
    assert sorted(page.nodes()) == ["ed-remove-b", "ed-remove-c"]
    assert "data-from" not in page.text
    page.post("save")
    assert page.response.status_code == 303
    workflow = client.get(f"{API}/projects/ed-remove/workflows/ed-remove-w", headers=ADMIN).json()
    assert workflow["spec"]["stages"] == [{"name": "ed-remove-b"}, {"name": "ed-remove-c"}]
    assert client.get(f"{API}/projects/ed-remove/stages/ed-remove-a",
                      headers=ADMIN).status_code == 200, "the Stage object itself stays"


def test_saving_over_a_workflow_changed_meanwhile_is_refused_in_one_line(client: TestClient
                                                                          ) -> None:
    make_workflow(client, "ed-stale")
    page = Editor(client, "ed-stale")
    page.post("remove:ed-stale-c")
    stored = client.get(f"{API}/projects/ed-stale/workflows/ed-stale-w", headers=ADMIN).json()
    stored["spec"]["stages"][2]["depends"] = ["ed-stale-b"]
    assert client.put(f"{API}/projects/ed-stale/workflows/ed-stale-w", json=stored,
                      headers=ADMIN).status_code == 200
    page.post("save")
    assert page.response.status_code == 409
    message = re.search(r"data-editor-message>(.*?)</div>", page.text).group(1)
    assert "\n" not in message and "Traceback" not in page.text


def test_a_damaged_form_or_an_unknown_action_is_a_clear_message(client: TestClient) -> None:
    make_workflow(client, "ed-bad")
    page = Editor(client, "ed-bad")
    response = client.post(page.url, data={"csrf": page.hidden("csrf"), "state": "{not json",
                                           "action": "save"})
    assert response.status_code == 200
    assert "the editor&#39;s form was damaged: reload the page" in response.text
    page.post("explode:now")
    assert "unknown editor action &#39;explode:now&#39;" in page.text
    page.post("add-template", template="no-such-template")
    assert "choose a stage template" in page.text
    page.post("add-template", template="shell", new_name="Bad Name")
    assert "stage name &#39;Bad Name&#39;" in page.text


def test_a_forged_state_with_a_bad_stage_name_is_a_problem_not_a_crash(client: TestClient
                                                                         ) -> None:
    make_workflow(client, "ed-forged")
    page = Editor(client, "ed-forged")
    state = json.loads(page.hidden("state"))
    state["spec"]["stages"].append({"name": "Bad Name"})
    state["stages"]["Bad Name"] = {"pod": {"spec": {"containers": [{"image": "x"}]}}}
    state["new"] = ["Bad Name"]
    response = client.post(page.url, data={"csrf": page.hidden("csrf"), "action": "save",
                                           "state": json.dumps(state)})
    assert response.status_code == 422
    page.response = response
    assert "metadata.name: String should match pattern" in page.problems_of("Bad Name")


def test_another_tenants_session_finds_no_editor(client: TestClient, app: Any) -> None:
    make_workflow(client, "ed-private")
    assert client.post(f"{API}/tenants", headers=ADMIN, json={
        "metadata": {"name": "edother"},
        "spec": {"persistentVolumeClaim": {"size": "1Gi"}}}).status_code == 201
    token = client.post(f"{API}/tenants/edother/tokens", headers=ADMIN,
                        json={"description": "t"}).json()["token"]
    with TestClient(app, follow_redirects=False) as other:
        _sign_in(other, token)
        response = other.get("/projects/ed-private/workflows/ed-private-w/edit")
        assert response.status_code == 404 and "ed-private-a" not in response.text
        csrf = page_csrf(other.get("/").text)
        response = other.post("/projects/ed-private/workflows/ed-private-w/edit",
                              data={"csrf": csrf, "state": "{}", "action": "save"})
        assert response.status_code == 404


def test_a_stage_name_escapes_in_the_page(client: TestClient) -> None:
    make_workflow(client, "ed-escape")
    page = Editor(client, "ed-escape")
    page.post("add-template", template="shell", new_name="<img src=x>")
    assert "<img src=x>" not in page.text
    assert "stage name &#39;&lt;img src=x&gt;&#39;" in page.text


def test_the_editor_of_a_workflow_with_many_stages_renders(client: TestClient) -> None:
    project = "ed-large"
    assert client.post(f"{API}/projects", json={"metadata": {"name": project}},
                       headers=ADMIN).status_code == 201
    names = [f"{project}-{i:03d}" for i in range(120)]
    for name in names:
        assert client.post(f"{API}/projects/{project}/stages", headers=ADMIN, json={
            "metadata": {"name": name},
            "spec": {"pod": {"spec": {"containers": [{"image": "alpine"}]}}}}).status_code == 201
    stages = [{"name": n, **({"depends": [names[i // 2]]} if i else {})}
              for i, n in enumerate(names)]
    assert client.post(f"{API}/projects/{project}/workflows", headers=ADMIN, json={
        "metadata": {"name": f"{project}-w"}, "spec": {"stages": stages}}).status_code == 201
    page = Editor(client, project)
    assert len(page.nodes()) == 120 and page.text.count('class="dag-edge"') == 119


def test_an_empty_project_workflow_page_needs_a_workflow(client: TestClient) -> None:
    assert client.get("/projects/nowhere/workflows/w/edit").status_code == 404

