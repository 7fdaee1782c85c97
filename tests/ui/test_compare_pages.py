"""The compare and triage pages answer bad or missing input with one clear line and the
right status, in the real server app (embedded cluster, no engine)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.ui import page_csrf

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app
from cyclone.ui.app import mount_ui

API = "/apis/v1alpha1/projects"
PAGES = "/projects/p/workflows/w"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("compare-pages")
    app = create_app(cluster=EmbeddedCluster(Path(data) / "c.db"), data_dir=data,
                     admin_token="admin", provisioning=False)
    mount_ui(app, "admin")
    with TestClient(app, follow_redirects=False) as test_client:
        form = test_client.get("/login").text
        csrf = page_csrf(form)
        assert test_client.post("/login", data={"token": "admin", "csrf": csrf}
                                ).status_code == 303
        bearer = {"Authorization": "Bearer admin"}
        for path, body in (
            (API, {"metadata": {"name": "p"}}),
            (f"{API}/p/stages", {"metadata": {"name": "s"}, "spec": {"pod": {"spec": {
                "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}}}),
            (f"{API}/p/workflows", {"metadata": {"name": "w"},
                                    "spec": {"stages": [{"name": "s"}]}}),
        ):
            answer = test_client.post(path, json=body, headers=bearer)
            assert answer.status_code == 201, answer.text
        yield test_client


def message(html: str) -> str:
    return re.search(r'<p role="alert">(.*?)</p>', html, re.S).group(1)


def test_a_workflow_without_runs_says_so(client: TestClient) -> None:
    answer = client.get(f"{PAGES}/compare")
    assert answer.status_code == 200
    assert "This workflow has no runs yet." in answer.text
    assert "data-compare-table" not in answer.text


@pytest.mark.parametrize("query, name", [
    ("a=nope", "nope"), ("a=..%2F..%2Fx", "../../x"), ("a=A_B", "A_B"),
    ("a=%00", "\\x00"), ("a=" + "x" * 300, "x" * 300),
])
def test_an_unknown_or_malformed_run_name_is_a_clear_404(client: TestClient, query: str,
                                                          name: str) -> None:
    expected = f"workflowrun &#39;{name}&#39; not found"
    answer = client.get(f"{PAGES}/compare?{query}")
    assert answer.status_code == 404 and message(answer.text) == expected
    answer = client.get(f"{PAGES}/runs/{query[2:]}/triage", headers={"Accept": "text/html"})
    assert answer.status_code == 404
    assert message(answer.text) == ("page not found" if "%2F" in query else expected)


def test_an_unknown_workflow_or_project_is_a_404_page(client: TestClient) -> None:
    assert message(client.get("/projects/p/workflows/nope/compare").text) == \
        "workflow &#39;nope&#39; not found"
    assert message(client.get("/projects/nope/workflows/w/runs/r/triage").text) == \
        "project &#39;nope&#39; not found"


def test_a_run_with_no_green_run_before_it_is_offered_the_pickers(client: TestClient) -> None:
    created = client.post(f"{API}/p/workflows/w/workflowruns", json={},
                          headers={"Authorization": "Bearer admin"})
    assert created.status_code == 201, created.text
    name = created.json()["metadata"]["name"]
    answer = client.get(f"{PAGES}/compare?a={name}")
    assert answer.status_code == 200
    assert f"No green run of this workflow before {name}: pick a run to compare with." \
        in answer.text
    assert f'<option value="{name}" selected>' in answer.text
    card = client.get(f"{PAGES}/runs/{name}/triage", headers={"HX-Request": "true"})
    assert card.status_code == 200 and "Nothing to triage" in card.text
