"""Clients and setup steps shared by the server tests."""

from __future__ import annotations

import httpx

ADMIN_TOKEN = "admin-secret-token"
API = "/apis/v1alpha1"


def make_client(app, token: str | None = None, tenant: str | None = None) -> httpx.AsyncClient:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if tenant:
        headers["X-Tenant"] = tenant
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://cyclone.test" + API, headers=headers)


async def create_tenant(admin: httpx.AsyncClient, name: str, quota: dict | None = None) -> dict:
    response = await admin.post("/tenants", json={
        "metadata": {"name": name},
        "spec": {"persistentVolumeClaim": {"storageClass": "standard", "size": "5Gi"},
                 "resourceQuota": quota or {"limits.cpu": "4", "limits.memory": "8Gi",
                                            "requests.cpu": "2", "requests.memory": "4Gi"}},
    })
    assert response.status_code == 201, response.text
    return response.json()


async def tenant_token(admin: httpx.AsyncClient, tenant: str) -> str:
    response = await admin.post(f"/tenants/{tenant}/tokens", json={"description": "test"})
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def allow_local_addresses(admin: httpx.AsyncClient, tenant: str) -> None:
    """As an admin, let `tenant` use SCM servers and receivers on local addresses (the
    tests' fakes listen on 127.0.0.1)."""
    current = await admin.get(f"/tenants/{tenant}")
    assert current.status_code == 200, current.text
    body = current.json()
    body["spec"]["allowLocalAddresses"] = True
    response = await admin.put(f"/tenants/{tenant}", json={"metadata": body["metadata"],
                                                           "spec": body["spec"]})
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["allowLocalAddresses"] is True
