from __future__ import annotations

import base64
import json

from cyclone.api import keys
from cyclone.kube import kinds

SECRETS = ("hunter2-password", "ghp_token_value", "bearer-value", "kubeconfig-body",
           "general-secret-value", "sonar-token")


def _all_integrations() -> list[dict]:
    return [
        {"metadata": {"name": "github"}, "spec": {"type": "SCM", "scm": {
            "type": "GitHub", "server": "https://github.com", "user": "bot",
            "password": "hunter2-password", "token": "ghp_token_value"}}},
        {"metadata": {"name": "registry"}, "spec": {"type": "DockerRegistry", "dockerRegistry": {
            "server": "registry.example", "user": "u", "password": "hunter2-password"}}},
        {"metadata": {"name": "sonar"}, "spec": {"type": "SonarQube", "sonarQube": {
            "server": "https://sonar", "token": "sonar-token"}}},
        {"metadata": {"name": "worker"}, "spec": {"type": "Cluster", "cluster": {
            "clusterName": "worker", "credential": {
                "server": "https://k8s", "bearerToken": "bearer-value",
                "password": "hunter2-password", "kubeConfig": "kubeconfig-body"}}}},
        {"metadata": {"name": "env"}, "spec": {"type": "General", "general": [
            {"name": "API_KEY", "value": "general-secret-value"}]}},
    ]


async def test_integrations_are_secrets_with_type_label_and_json_spec(devops, cluster):
    for body in _all_integrations():
        response = await devops.post("/integrations", json=body)
        assert response.status_code == 201, response.text
    secret = await cluster.get(kinds.SECRET, "github", "cyclone-devops")
    assert secret["metadata"]["labels"][keys.LABEL_INTEGRATION_TYPE] == "SCM"
    stored = json.loads(base64.b64decode(secret["data"]["integration"]))
    assert stored["scm"]["token"] == "ghp_token_value"


async def test_secret_fields_never_appear_in_responses(devops):
    bodies = []
    for body in _all_integrations():
        bodies.append((await devops.post("/integrations", json=body)).text)
        bodies.append((await devops.get(f"/integrations/{body['metadata']['name']}")).text)
        bodies.append((await devops.put(f"/integrations/{body['metadata']['name']}",
                                        json=body)).text)
    bodies.append((await devops.get("/integrations")).text)
    for text in bodies:
        for secret in SECRETS:
            assert secret not in text
    listed = (await devops.get("/integrations")).json()
    assert listed["metadata"]["total"] == 5
    github = (await devops.get("/integrations/github")).json()
    assert github["spec"]["scm"]["user"] == "bot"


async def test_update_without_secret_keeps_stored_secret(devops, cluster):
    await devops.post("/integrations", json=_all_integrations()[0])
    shown = (await devops.get("/integrations/github")).json()
    shown["spec"]["scm"]["user"] = "new-bot"
    response = await devops.put("/integrations/github", json=shown)
    assert response.status_code == 200, response.text
    secret = await cluster.get(kinds.SECRET, "github", "cyclone-devops")
    stored = json.loads(base64.b64decode(secret["data"]["integration"]))
    assert stored["scm"]["user"] == "new-bot"
    assert stored["scm"]["password"] == "hunter2-password"


async def test_integration_source_must_match_type(devops):
    response = await devops.post("/integrations", json={
        "metadata": {"name": "x"}, "spec": {"type": "SCM", "sonarQube": {"server": "s"}}})
    assert response.status_code == 422
    assert "scm" in response.json()["message"]


async def test_integration_name_from_alias(devops):
    response = await devops.post("/integrations", json={
        "metadata": {"annotations": {keys.ANNOTATION_ALIAS: "My Registry"}},
        "spec": {"type": "DockerRegistry", "dockerRegistry": {"server": "r"}}})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["name"].startswith("my-registry-")


async def test_delete_integration(devops):
    await devops.post("/integrations", json=_all_integrations()[1])
    assert (await devops.delete("/integrations/registry")).status_code == 204
    assert (await devops.get("/integrations/registry")).status_code == 404
    assert (await devops.delete("/integrations/registry")).status_code == 404


async def test_other_tenant_cannot_see_integrations(app, admin, devops):
    from .helpers import create_tenant, make_client, tenant_token

    await devops.post("/integrations", json=_all_integrations()[0])
    await create_tenant(admin, "qa")
    async with make_client(app, await tenant_token(admin, "qa")) as qa:
        assert (await qa.get("/integrations/github")).status_code == 404
        assert (await qa.get("/integrations")).json()["items"] == []
        assert (await qa.delete("/integrations/github")).status_code == 404
        assert (await qa.put("/integrations/github",
                             json=_all_integrations()[0])).status_code == 404
    assert (await devops.get("/integrations/github")).status_code == 200
