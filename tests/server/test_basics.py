from __future__ import annotations

from unittest.mock import ANY

from cyclone.ui.app import mount_ui

from .helpers import ADMIN_TOKEN, make_client


async def test_healthcheck_answers_without_token(app):
    async with make_client(app) as client:
        response = await client.get("http://cyclone.test/healthcheck")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_and_docs_are_served(app):
    """The API declares its bearer scheme; the docs pages come with the UI's mount."""
    mount_ui(app, ADMIN_TOKEN)
    async with make_client(app) as client:
        spec = (await client.get("http://cyclone.test/openapi.json")).json()
        docs = await client.get("http://cyclone.test/docs")
    assert "/apis/v1alpha1/projects/{project}/workflows/{workflow}/workflowruns" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http", "scheme": "bearer", "description": ANY}
    assert spec["security"] == [{"bearerToken": []}]
    assert spec["paths"]["/healthcheck"]["get"]["security"] == []
    assert docs.status_code == 200
    assert "swagger-ui-bundle.js" in docs.text


async def test_request_without_token_is_401_with_message(app):
    async with make_client(app) as client:
        response = await client.get("/projects")
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"
    assert response.json()["message"]


async def test_wrong_token_is_401(app):
    async with make_client(app, "nope") as client:
        assert (await client.get("/projects")).status_code == 401
    async with make_client(app, "cyt.system.abcd.forged") as client:
        assert (await client.get("/projects")).status_code == 401


async def test_system_tenant_exists_at_startup(admin):
    response = await admin.get("/tenants/system")
    assert response.status_code == 200
    assert response.json()["metadata"]["name"] == "system"


async def test_unknown_route_is_404_json(admin):
    response = await admin.get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


def test_admin_token_file_is_created_once_and_private(tmp_path):
    import stat

    from cyclone.server.auth import load_or_create_admin_token

    first = load_or_create_admin_token(tmp_path)
    assert len(first) >= 32
    assert load_or_create_admin_token(tmp_path) == first
    mode = stat.S_IMODE((tmp_path / "admin-token").stat().st_mode)
    assert mode == 0o600
