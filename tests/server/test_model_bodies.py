"""Tenant and Integration bodies: the server answers with the api's rules, the ones
``cyclone apply`` checks with (`cyclone.api.validation.validate_object`)."""

from __future__ import annotations

import pytest

from cyclone.api.integration import ANNOTATION_PROVISIONING
from cyclone.api.validation import validate_object

CLUSTER = {"type": "Cluster", "cluster": {"clusterName": "w", "namespace": "work"}}

REFUSED = [
    ("/tenants", {"kind": "Tenant", "metadata": {"name": "t" * 56}}),
    ("/tenants", {"kind": "Tenant", "metadata": {"generateName": "team-"}}),
    ("/tenants", {"kind": "Tenant", "metadata": {"name": "Not_Valid"}}),
    ("/integrations", {"kind": "Integration", "metadata": {"name": "has.dots"},
                       "spec": CLUSTER}),
    ("/integrations", {"kind": "Integration", "metadata": {"name": "x"},
                       "spec": {"type": "SCM", "sonarQube": {"server": "s"}}}),
    ("/integrations", {"kind": "Integration", "metadata": {
        "name": "x", "annotations": {ANNOTATION_PROVISIONING: '{"state": "Ready"}'}},
        "spec": CLUSTER}),
]


@pytest.mark.parametrize(("path", "body"), REFUSED,
                         ids=["long-tenant", "generated-tenant", "bad-tenant-name",
                              "dotted-integration", "source-of-another-type",
                              "provisioning-annotation"])
async def test_the_server_refuses_a_body_for_the_fields_validate_object_names(
        admin, path, body):
    expected = validate_object(body)
    assert expected
    response = await admin.post(path, json=body, headers={"X-Tenant": "system"})
    assert response.status_code == 422, response.text
    details = response.json()["details"]
    assert [(d["field"], d["message"]) for d in details] == [
        (f"body.{e.path}", e.message) for e in expected]


async def test_the_longest_tenant_name_the_api_allows_is_created(admin):
    body = {"kind": "Tenant", "metadata": {"name": "t" * 55}}
    assert validate_object(body) == []
    response = await admin.post("/tenants", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["name"] == "t" * 55
