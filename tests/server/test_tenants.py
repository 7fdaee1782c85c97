from __future__ import annotations

import json

from cyclone.api import keys
from cyclone.kube import errors, kinds

from .helpers import create_tenant, make_client, tenant_token


async def test_create_tenant_makes_annotated_namespace(admin, cluster):
    created = await create_tenant(admin, "devops", {"limits.cpu": "4"})
    assert created["metadata"]["name"] == "devops"
    ns = await cluster.get(kinds.NAMESPACE, "cyclone-devops")
    info = json.loads(ns["metadata"]["annotations"][keys.ANNOTATION_TENANT_INFO])
    assert info["persistentVolumeClaim"] == {"storageClass": "standard", "size": "5Gi"}
    assert info["resourceQuota"] == {"limits.cpu": "4"}


async def test_tenant_get_list_update(admin):
    await create_tenant(admin, "devops")
    await create_tenant(admin, "qa")
    listed = (await admin.get("/tenants", params={"sort": "name", "ascending": True})).json()
    assert [t["metadata"]["name"] for t in listed["items"]] == ["devops", "qa", "system"]
    assert listed["metadata"] == {"total": 3, "itemsLength": 3}
    response = await admin.put("/tenants/qa", json={
        "metadata": {"name": "qa", "annotations": {keys.ANNOTATION_DESCRIPTION: "QA team"}},
        "spec": {"resourceQuota": {"limits.cpu": "8"}},
    })
    assert response.status_code == 200, response.text
    got = (await admin.get("/tenants/qa")).json()
    assert got["spec"]["resourceQuota"] == {"limits.cpu": "8"}
    assert got["metadata"]["annotations"][keys.ANNOTATION_DESCRIPTION] == "QA team"


async def test_duplicate_tenant_is_409(admin):
    await create_tenant(admin, "devops")
    response = await admin.post("/tenants", json={"metadata": {"name": "devops"}})
    assert response.status_code == 409
    assert "already exists" in response.json()["message"]


async def test_bad_tenant_bodies_are_4xx_with_field_paths(admin):
    bad_name = await admin.post("/tenants", json={"metadata": {"name": "Not_Valid"}})
    assert bad_name.status_code == 422
    assert any(d["field"].endswith("metadata.name") for d in bad_name.json()["details"])
    bad_quota = await admin.post("/tenants", json={
        "metadata": {"name": "x"}, "spec": {"resourceQuota": {"cpu": "lots"}}})
    assert bad_quota.status_code == 422
    assert "resourceQuota" in bad_quota.json()["message"]
    not_json = await admin.post("/tenants", content=b"{", headers={
        "Content-Type": "application/json"})
    assert not_json.status_code == 422


async def test_delete_tenant_removes_namespace(admin, cluster):
    await create_tenant(admin, "devops")
    assert (await admin.delete("/tenants/devops")).status_code == 204
    assert (await admin.get("/tenants/devops")).status_code == 404
    try:
        ns = await cluster.get(kinds.NAMESPACE, "cyclone-devops")
    except errors.NotFound:
        ns = None
    assert ns is None or ns["metadata"].get("deletionTimestamp")


async def test_tenant_token_reaches_only_its_tenant(app, admin):
    await create_tenant(admin, "devops")
    await create_tenant(admin, "qa")
    token = await tenant_token(admin, "devops")
    async with make_client(app, token) as devops:
        assert (await devops.get("/tenants/devops")).status_code == 200
        assert (await devops.get("/tenants/qa")).status_code == 404
        assert (await devops.get("/tenants")).status_code == 403
        assert (await devops.post("/tenants", json={"metadata": {"name": "x"}})).status_code \
            == 403
        assert (await devops.delete("/tenants/qa")).status_code == 403
        assert (await devops.post("/tenants/devops/tokens")).status_code == 403
        assert (await devops.get("/projects")).status_code == 200
    async with make_client(app, token, tenant="qa") as devops_as_qa:
        assert (await devops_as_qa.get("/projects")).status_code == 404


async def test_revoked_token_no_longer_works(app, admin):
    await create_tenant(admin, "devops")
    issued = (await admin.post("/tenants/devops/tokens", json={"description": "ci"})).json()
    listed = (await admin.get("/tenants/devops/tokens")).json()["items"]
    assert [t["id"] for t in listed] == [issued["id"]]
    assert "token" not in listed[0] and "sha256" not in json.dumps(listed)
    async with make_client(app, issued["token"]) as client:
        assert (await client.get("/projects")).status_code == 200
        assert (await admin.delete(f"/tenants/devops/tokens/{issued['id']}")).status_code == 204
        assert (await client.get("/projects")).status_code == 401


async def test_tokens_are_stored_hashed(admin, cluster):
    await create_tenant(admin, "devops")
    token = await tenant_token(admin, "devops")
    secret = await cluster.get(kinds.SECRET, "cyclone-tenant-tokens", "cyclone-devops")
    assert token not in json.dumps(secret)
    assert token.split(".")[-1] not in json.dumps(secret)


async def test_token_of_deleted_tenant_is_rejected(app, admin):
    await create_tenant(admin, "devops")
    token = await tenant_token(admin, "devops")
    await admin.delete("/tenants/devops")
    async with make_client(app, token) as client:
        assert (await client.get("/projects")).status_code in (401, 404)


async def test_system_tenant_cannot_be_deleted(admin):
    assert (await admin.delete("/tenants/system")).status_code == 403
    assert (await admin.get("/tenants/system")).status_code == 200


async def test_tenant_quota_update_reaches_opened_cluster(admin, devops, cluster):
    await devops.post("/integrations", json={"metadata": {"name": "local"}, "spec": {
        "type": "Cluster", "cluster": {"isControlCluster": True}}})
    assert (await devops.put("/integrations/local/opencluster")).status_code == 200
    response = await admin.put("/tenants/devops", json={
        "metadata": {"name": "devops"},
        "spec": {"persistentVolumeClaim": {"size": "5Gi"},
                 "resourceQuota": {"limits.cpu": "16", "limits.memory": "32Gi"}}})
    assert response.status_code == 200, response.text
    quota = await cluster.get(kinds.RESOURCE_QUOTA, "cyclone-quota-devops",
                              "cyclone-devops-worker")
    assert quota["spec"]["hard"] == {"limits.cpu": "16", "limits.memory": "32Gi"}


async def test_a_tenant_whose_old_namespace_ends_during_the_create_is_created(
        admin, cluster, monkeypatch):
    """The create is refused while the old namespace still exists; by the time the server
    looks, it is gone: the tenant is created rather than reported as existing."""
    real_create = cluster.create
    refused = []

    async def create_after_a_refusal(obj, *args, **kwargs):
        if obj.get("kind") == "Namespace" and not refused:
            refused.append(obj["metadata"]["name"])
            raise errors.AlreadyExists(f'namespaces "{obj["metadata"]["name"]}" already exists')
        return await real_create(obj, *args, **kwargs)

    monkeypatch.setattr(cluster, "create", create_after_a_refusal)
    created = await create_tenant(admin, "reborn")
    assert created["metadata"]["name"] == "reborn"
    assert refused == ["cyclone-reborn"]
