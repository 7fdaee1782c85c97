"""Integrations in the browser: credentials write-only on every page, an edit that keeps
them, "test connection" of an SCM and of a cluster against real HTTP servers on
127.0.0.1, refusals under their field, and one tenant never seeing another's."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp, free_port
from support.ui import browser_sign_in, screenshot, signed_in_client

SCM_TOKEN = "ghp_" + secrets.token_hex(12)
CLUSTER_TOKEN = "k8s-" + secrets.token_hex(12)


class _Fake(BaseHTTPRequestHandler):
    """GitHub's repository listing (under /api/v3) and a Kubernetes API server's
    namespace read, each answering only its own token."""

    seen: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen.append(auth)
        if self.path.startswith("/api/v3/user/repos"):
            if auth != f"Bearer {SCM_TOKEN}":
                return self._answer(401, {"message": "Bad credentials"})
            return self._answer(200, [{"full_name": "org/app", "html_url": "u1"},
                                      {"full_name": "org/lib", "html_url": "u2"}])
        if self.path.startswith("/api/v1/namespaces/default"):
            if auth != f"Bearer {CLUSTER_TOKEN}":
                return self._answer(401, {"kind": "Status", "apiVersion": "v1",
                                          "status": "Failure", "message": "Unauthorized",
                                          "reason": "Unauthorized", "code": 401})
            return self._answer(200, {"kind": "Namespace", "apiVersion": "v1",
                                      "metadata": {"name": "default"}})
        return self._answer(404, {"message": "Not Found"})


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _tenant(api: httpx.Client, allow_local: bool) -> tuple[str, str]:
    name = f"uiint{secrets.token_hex(3)}"
    created = api.post("/apis/v1alpha1/tenants", json={
        "metadata": {"name": name},
        "spec": {"persistentVolumeClaim": {"size": "1Gi"}, "allowLocalAddresses": allow_local}})
    assert created.status_code == 201, created.text
    issued = api.post(f"/apis/v1alpha1/tenants/{name}/tokens", json={"description": "ui"})
    return name, issued.json()["token"]


@pytest.fixture(scope="module")
def local_tenant(admin_api: httpx.Client) -> tuple[str, str]:
    """A tenant whose SCM servers may be on 127.0.0.1 (the fake server's address)."""
    return _tenant(admin_api, allow_local=True)


def _test(client: httpx.Client, name: str) -> str:
    response = client.post(f"/integrations/{name}/test",
                           headers={"X-CSRF-Token": client.csrf, "HX-Request": "true"})
    assert response.status_code == 200, response.text
    return response.text


def test_an_scm_token_is_write_only_and_kept_by_an_edit(context: Any, ui_up: LiveUp,
                                                         fake_server: str,
                                                         local_tenant: tuple[str, str]
                                                         ) -> None:
    page = context.new_page()
    browser_sign_in(page, ui_up.url, local_tenant[1])
    page.goto(f"{ui_up.url}/integrations/new?type=SCM")
    page.fill("input[name=name]", "gh")
    page.fill("input[name=alias]", "GitHub <i>mirror</i>")
    page.select_option("select[name='scm.type']", "GitHub")
    page.fill("input[name='scm.server']", fake_server)
    page.fill("input[name='scm.token']", SCM_TOKEN)
    page.click("form.admin-form button[type=submit]")
    page.wait_for_url(f"{ui_up.url}/integrations/gh")
    assert SCM_TOKEN not in page.content()
    assert "••••••" in page.locator("#integration-facts").inner_text()
    page.click("#test-connection")
    page.wait_for_selector("#test-result [data-ok]")
    assert page.locator("#test-result").inner_text().strip() == \
        "✓ Connected to GitHub: 2 repositories visible with these credentials"
    screenshot(page, "integration")

    page.goto(f"{ui_up.url}/integrations")
    row = page.locator('#integrations tr[data-name="gh"]')
    assert "API token ••••••" in row.inner_text()
    assert SCM_TOKEN not in page.content()
    row.locator("button", has_text="Test").click()
    row.locator(".test-result [data-ok=true]").wait_for()
    screenshot(page, "integrations")

    page.goto(f"{ui_up.url}/integrations/gh/edit")
    token_input = page.locator("input[name='scm.token']")
    assert token_input.get_attribute("type") == "password"
    assert token_input.input_value() == ""
    assert token_input.get_attribute("placeholder") == "unchanged"
    assert SCM_TOKEN not in page.content()
    screenshot(page, "integration-edit")
    page.fill("input[name=alias]", "GitHub again")
    page.click("form.admin-form button[type=submit]")
    page.wait_for_url(f"{ui_up.url}/integrations/gh")
    assert page.locator("h1").inner_text().startswith("GitHub again")
    page.click("#test-connection")
    page.wait_for_selector("#test-result [data-ok=true]")
    assert _Fake.seen[-1] == f"Bearer {SCM_TOKEN}"


def test_a_failing_scm_connection_is_one_line(ui_up: LiveUp, fake_server: str,
                                               local_tenant: tuple[str, str]) -> None:
    with signed_in_client(ui_up.url, local_tenant[1]) as client:
        for name, server, token in (("gh-wrong", fake_server, "ghp_wrong"),
                                    ("gh-gone", f"http://127.0.0.1:{free_port()}", "x")):
            created = client.post("/integrations", data={
                "csrf": client.csrf, "type": "SCM", "name": name, "scm.type": "GitHub",
                "scm.server": server, "scm.token": token})
            assert created.status_code == 303, created.text
        wrong = _test(client, "gh-wrong")
        assert 'data-ok="false"' in wrong
        assert "GitHub refused the integration&#39;s credentials (HTTP 401)" in wrong
        gone = _test(client, "gh-gone")
        assert 'data-ok="false"' in gone and "unreachable" in gone
        assert "Traceback" not in gone and gone.count("\n") <= 1


def test_a_cluster_connection_reaches_its_api_server(ui_up: LiveUp, fake_server: str,
                                                     local_tenant: tuple[str, str]) -> None:
    with signed_in_client(ui_up.url, local_tenant[1]) as client:
        for name, token in (("k8s-good", CLUSTER_TOKEN), ("k8s-bad", "nope")):
            created = client.post("/integrations", data={
                "csrf": client.csrf, "type": "Cluster", "name": name,
                "cluster.credential.server": fake_server,
                "cluster.credential.bearerToken": token})
            assert created.status_code == 303, created.text
        good = _test(client, "k8s-good")
        assert f"Connected to the API server at {fake_server}" in good
        bad = _test(client, "k8s-bad")
        assert 'data-ok="false"' in bad and "HTTP 401" in bad
        page = client.get("/integrations/k8s-good")
        assert CLUSTER_TOKEN not in page.text and "Open cluster" in page.text
        edit = client.get("/integrations/k8s-good/edit")
        assert CLUSTER_TOKEN not in edit.text


def test_a_local_scm_server_is_refused_under_its_field(ui_up: LiveUp,
                                                        tenant: tuple[str, str]) -> None:
    with signed_in_client(ui_up.url, tenant[1]) as client:
        refused = client.post("/integrations", data={
            "csrf": client.csrf, "type": "SCM", "name": "local", "scm.type": "GitHub",
            "scm.server": "http://127.0.0.1:9", "scm.token": SCM_TOKEN})
        assert refused.status_code == 422
        assert 'id="err-scm-server"' in refused.text
        assert SCM_TOKEN not in refused.text


def test_bad_integration_values_are_shown_under_their_fields(ui_up: LiveUp,
                                                             tenant: tuple[str, str]) -> None:
    with signed_in_client(ui_up.url, tenant[1]) as client:
        bad_name = client.post("/integrations", data={
            "csrf": client.csrf, "type": "DockerRegistry", "name": "Bad Name",
            "dockerRegistry.server": "r.example", "dockerRegistry.password": "pw-typed"})
        assert bad_name.status_code == 422, bad_name.text
        assert 'id="err-name"' in bad_name.text
        assert "pw-typed" not in bad_name.text
        bad_cluster = client.post("/integrations", data={
            "csrf": client.csrf, "type": "Cluster", "name": "c1",
            "cluster.clusterName": "Not_A_Name"})
        assert bad_cluster.status_code == 422
        assert 'id="err-cluster-clusterName"' in bad_cluster.text
        bad_type = client.post("/integrations", data={"csrf": client.csrf, "type": "Nope",
                                                      "name": "x"})
        assert bad_type.status_code == 422 and 'id="err-type"' in bad_type.text
        duplicate = {"csrf": client.csrf, "type": "SonarQube", "name": "sq",
                     "sonarQube.server": "https://sonar.example"}
        assert client.post("/integrations", data=duplicate).status_code == 303
        again = client.post("/integrations", data=duplicate)
        assert again.status_code == 409 and "already exists" in again.text


def test_a_general_integration_keeps_each_value_by_its_name(ui_up: LiveUp,
                                                            tenant: tuple[str, str]) -> None:
    with signed_in_client(ui_up.url, tenant[1]) as client:
        created = client.post("/integrations", data={
            "csrf": client.csrf, "type": "General", "name": "env",
            "general.0.name": "A", "general.0.value": "value-a-secret",
            "general.1.name": "B", "general.1.value": "value-b-secret"})
        assert created.status_code == 303, created.text
        edit = client.get("/integrations/env/edit").text
        assert "value-a-secret" not in edit and 'value="A"' in edit
        saved = client.post("/integrations/env", data={
            "csrf": client.csrf, "general.0.name": "B", "general.0.value": "",
            "general.1.name": "C", "general.1.value": "value-c-secret"})
        assert saved.status_code == 303, saved.text
    with httpx.Client(base_url=ui_up.url, headers={
            "Authorization": f"Bearer {ui_up.token}", "X-Tenant": tenant[0]}) as api:
        stored = api.get("/apis/v1alpha1/integrations/env")
        assert [i["name"] for i in stored.json()["spec"]["general"]] == ["B", "C"]
        assert all(i["value"] == "******" for i in stored.json()["spec"]["general"])


def test_a_tenant_never_sees_another_tenants_integrations(ui_up: LiveUp,
                                                          admin_api: httpx.Client,
                                                          tenant: tuple[str, str]) -> None:
    other = _tenant(admin_api, allow_local=False)
    with signed_in_client(ui_up.url, other[1]) as client:
        created = client.post("/integrations", data={
            "csrf": client.csrf, "type": "SonarQube", "name": "theirs",
            "sonarQube.server": "https://sonar.example"})
        assert created.status_code == 303
    with signed_in_client(ui_up.url, tenant[1]) as client:
        client.cookies.set("cyclone_tenant", other[0])
        assert "theirs" not in client.get("/integrations").text
        for path in ("/integrations/theirs", "/integrations/theirs/edit"):
            assert client.get(path).status_code == 404
        for action in ("test", "delete", "open"):
            refused = client.post(f"/integrations/theirs/{action}",
                                  data={"csrf": client.csrf})
            assert refused.status_code == 404, (action, refused.status_code)


@pytest.mark.k8s
def test_a_cluster_connection_reaches_a_real_kube_apiserver(ui_up: LiveUp,
                                                            local_tenant: tuple[str, str]
                                                            ) -> None:
    from support.control_plane import session_plane

    plane = session_plane()
    kubeconfig = plane.kubeconfig.read_text()
    with signed_in_client(ui_up.url, local_tenant[1]) as client:
        for name, config in (("real", kubeconfig),
                             ("real-bad", kubeconfig.replace(plane.token, "not-the-token"))):
            created = client.post("/integrations", data={
                "csrf": client.csrf, "type": "Cluster", "name": name,
                "cluster.credential.kubeConfig": config})
            assert created.status_code == 303, created.text
        assert f"Connected to the API server at {plane.server}" in _test(client, "real")
        refused = _test(client, "real-bad")
        assert 'data-ok="false"' in refused and "HTTP 401" in refused
        for path in ("/integrations/real", "/integrations/real/edit", "/integrations"):
            assert plane.token not in client.get(path).text
