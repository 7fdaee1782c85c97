"""The workflow editor on a real kube-apiserver: its dry-run validation and its Save go
through the same create/update functions as the API, against real CRD storage."""

from __future__ import annotations

import html
import re
import secrets
from pathlib import Path

import httpx
import pytest

from cyclone.api import keys
from cyclone.server import create_app
from cyclone.ui.app import mount_ui

API = "/apis/v1alpha1"
ADMIN = {"Authorization": "Bearer admin"}


def hidden(text: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', text)
    assert found, f"no hidden field {name}"
    return html.unescape(found.group(1))


@pytest.mark.k8s
async def test_the_editor_validates_and_saves_on_a_real_kube_apiserver(tmp_path: Path) -> None:
    from support.kube_engine import engine_test_cluster

    namespace = keys.tenant_namespace(keys.DEFAULT_TENANT)
    project = f"edk-{secrets.token_hex(3)}"
    a, b, new = f"{project}-a", f"{project}-b", f"{project}-new"
    async with engine_test_cluster(namespace, keys.tenant_pvc_name(keys.DEFAULT_TENANT)
                                   ) as cluster:
        app = create_app(cluster=cluster, data_dir=tmp_path, admin_token="admin",
                         provisioning=False)
        mount_ui(app, "admin")
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://cyclone.test",
                follow_redirects=False, timeout=30) as client:
            assert (await client.post(f"{API}/projects", headers=ADMIN, json={
                "metadata": {"name": project}})).status_code == 201
            for stage in (a, b):
                assert (await client.post(f"{API}/projects/{project}/stages", headers=ADMIN,
                                          json={"metadata": {"name": stage}, "spec": {"pod": {
                                              "spec": {"containers": [{"image": "alpine"}]}}}})
                        ).status_code == 201
            assert (await client.post(f"{API}/projects/{project}/workflows", headers=ADMIN,
                                      json={"metadata": {"name": project}, "spec": {"stages": [
                                          {"name": a}, {"name": b, "depends": [a]}]}})
                    ).status_code == 201
            login = (await client.get("/login")).text
            assert (await client.post("/login", data={
                "token": "admin", "csrf": hidden(login, "csrf")})).status_code == 303
            url = f"/projects/{project}/workflows/{project}/edit"
            text = (await client.get(url)).text

            async def act(action: str, **fields: str) -> httpx.Response:
                nonlocal text
                response = await client.post(url, data={
                    "csrf": hidden(text, "csrf"), "state": hidden(text, "state"),
                    "action": action, **fields})
                text = response.text
                return response

            await act("add-template", template="shell", new_name=new)
            await act("connect", connect_from=new, connect_to=a)
            await act("connect", connect_from=b, connect_to=new)
            assert f"cycle {a} -&gt; {new} -&gt; {b} -&gt; {a}" in text
            assert (await act("save")).status_code == 422
            await act(f"disconnect:{b}>{new}")
            saved = await act("save")
            assert saved.status_code == 303, text
            workflow = (await client.get(f"{API}/projects/{project}/workflows/{project}",
                                         headers=ADMIN)).json()
            assert workflow["spec"]["stages"] == [
                {"name": a, "depends": [new]}, {"name": b, "depends": [a]}, {"name": new}]
            stage = (await client.get(f"{API}/projects/{project}/stages/{new}",
                                      headers=ADMIN)).json()
            assert stage["spec"]["pod"]["spec"]["containers"][0]["image"] == "{{ image }}"
