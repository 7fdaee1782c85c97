"""Credentials are write-only on every integration and trigger route."""

from __future__ import annotations

import base64
import json

import pytest

from cyclone.api.credentials import MASK
from cyclone.kube import kinds

SECRETS = ("scm-password-1", "scm-token-1", "hook-secret-1", "registry-pw-1", "sonar-token-1",
           "bearer-token-1", "cluster-pw-1", "ca-data-1", "kubeconfig-token-1",
           "general-value-1", "trigger-secret-1")

INTEGRATIONS = [
    {"metadata": {"name": "github"}, "spec": {"type": "SCM", "scm": {
        "type": "GitHub", "server": "https://github.com", "user": "bot",
        "password": "scm-password-1", "token": "scm-token-1", "webhookSecret": "hook-secret-1"}}},
    {"metadata": {"name": "registry"}, "spec": {"type": "DockerRegistry", "dockerRegistry": {
        "server": "registry.example", "user": "u", "password": "registry-pw-1"}}},
    {"metadata": {"name": "sonar"}, "spec": {"type": "SonarQube", "sonarQube": {
        "server": "https://sonar", "token": "sonar-token-1"}}},
    {"metadata": {"name": "worker"}, "spec": {"type": "Cluster", "cluster": {
        "isControlCluster": True, "namespace": "cyclone-devops-w",
        "credential": {"server": "https://k8s", "user": "admin", "bearerToken": "bearer-token-1",
                       "password": "cluster-pw-1",
                       "tlsClientConfig": {"insecure": False, "caData": "ca-data-1"},
                       "kubeConfig": {"users": [{"name": "u",
                                                 "user": {"token": "kubeconfig-token-1"}}]}}}}},
    {"metadata": {"name": "env"}, "spec": {"type": "General", "general": [
        {"name": "API_KEY", "value": "general-value-1"}, {"name": "EMPTY"}]}},
]


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked: {text}"


async def _stored_spec(cluster, name: str) -> dict:
    secret = await cluster.get(kinds.SECRET, name, "cyclone-devops")
    return json.loads(base64.b64decode(secret["data"]["integration"]))


async def test_every_integration_route_masks_credentials(devops):
    texts = []
    for body in INTEGRATIONS:
        created = await devops.post("/integrations", json=body)
        assert created.status_code == 201, created.text
        texts.append(created.text)
        name = body["metadata"]["name"]
        texts.append((await devops.get(f"/integrations/{name}")).text)
        updated = await devops.put(f"/integrations/{name}", json=body)
        assert updated.status_code == 200, updated.text
        texts.append(updated.text)
    texts.append((await devops.get("/integrations")).text)
    texts.append((await devops.get("/integrations?limit=2&start=1")).text)
    opened = await devops.put("/integrations/worker/opencluster")
    assert opened.status_code == 200, opened.text
    texts.append(opened.text)
    closed = await devops.put("/integrations/worker/closecluster")
    assert closed.status_code == 200, closed.text
    texts.append(closed.text)
    for text in texts:
        _clean(text)
    assert MASK in opened.text and MASK in closed.text


async def test_set_credentials_show_as_the_mask_and_unset_ones_are_absent(devops):
    for body in INTEGRATIONS:
        await devops.post("/integrations", json=body)
    scm = (await devops.get("/integrations/github")).json()["spec"]["scm"]
    assert scm == {"type": "GitHub", "server": "https://github.com", "user": "bot",
                   "password": MASK, "token": MASK, "webhookSecret": MASK}
    credential = (await devops.get("/integrations/worker")).json()["spec"]["cluster"][
        "credential"]
    assert credential["kubeConfig"] == MASK
    assert credential["tlsClientConfig"] == {"insecure": False, "caData": MASK}
    general = (await devops.get("/integrations/env")).json()["spec"]["general"]
    assert general == [{"name": "API_KEY", "value": MASK}, {"name": "EMPTY"}]


async def test_get_then_put_round_trip_keeps_every_credential(devops, cluster):
    for body in INTEGRATIONS:
        await devops.post("/integrations", json=body)
        name = body["metadata"]["name"]
        before = await _stored_spec(cluster, name)
        before.get("cluster", {}).setdefault("isWorkerCluster", False)
        shown = (await devops.get(f"/integrations/{name}")).json()
        response = await devops.put(f"/integrations/{name}", json=shown)
        assert response.status_code == 200, response.text
        after = await _stored_spec(cluster, name)
        assert after == before, name


async def test_update_replaces_a_credential_given_in_clear(devops, cluster):
    await devops.post("/integrations", json=INTEGRATIONS[0])
    shown = (await devops.get("/integrations/github")).json()
    shown["spec"]["scm"]["token"] = "rotated-token"
    assert (await devops.put("/integrations/github", json=shown)).status_code == 200
    stored = await _stored_spec(cluster, "github")
    assert stored["scm"]["token"] == "rotated-token"
    assert stored["scm"]["password"] == "scm-password-1"


async def test_a_mask_sent_on_create_is_not_stored(devops, cluster):
    body = {"metadata": {"name": "r"}, "spec": {"type": "DockerRegistry", "dockerRegistry": {
        "server": "r", "password": MASK}}}
    assert (await devops.post("/integrations", json=body)).status_code == 201
    assert "password" not in (await _stored_spec(cluster, "r"))["dockerRegistry"]


@pytest.mark.parametrize(("source", "field"), [
    ({"type": "SCM", "scm": {"type": "GitHub", "privateKey": "k"}}, "spec.scm.privateKey"),
    ({"type": "SCM", "scm": {"scm": {"token": "t"}}}, "spec.scm.scm"),
    ({"type": "DockerRegistry", "dockerRegistry": {"auth": "a"}}, "spec.dockerRegistry.auth"),
    ({"type": "SonarQube", "sonarQube": {"password": "p"}}, "spec.sonarQube.password"),
    ({"type": "Cluster", "cluster": {"credential": {"tlsClientConfig": {"keyData": "k"}}}},
     "spec.cluster.credential.tlsClientConfig.keyData"),
    ({"type": "General", "general": [{"name": "a", "secret": "s"}]}, "spec.general.0.secret"),
])
async def test_unknown_integration_fields_are_refused_with_their_path(devops, cluster, source,
                                                                      field):
    response = await devops.post("/integrations", json={"metadata": {"name": "bad"},
                                                        "spec": source})
    assert response.status_code == 422, response.text
    assert field in response.json()["message"]
    assert any(d["field"].endswith(field) for d in response.json()["details"])
    listed = await cluster.list(kinds.SECRET, "cyclone-devops")
    assert "bad" not in {s["metadata"]["name"] for s in listed.items}


async def test_update_with_unknown_field_is_refused(devops):
    await devops.post("/integrations", json=INTEGRATIONS[1])
    body = {"metadata": {"name": "registry"}, "spec": {"type": "DockerRegistry",
                                                       "dockerRegistry": {"auth": "x"}}}
    assert (await devops.put("/integrations/registry", json=body)).status_code == 422


async def test_openapi_describes_the_write_only_rule(app):
    document = app.openapi()
    description = document["components"]["schemas"]["SCMSource"]["properties"]["token"][
        "description"]
    assert MASK in description and "Write-only" in description
    trigger = document["paths"]["/apis/v1alpha1/projects/{project}/workflows/{workflow}/"
                                "workflowtriggers/{name}"]["get"]
    assert "spec.scm.secret" in trigger["description"] and MASK in trigger["description"]


TRIGGERS = "/projects/demo/workflows/ci/workflowtriggers"


async def _workflow(devops) -> None:
    await devops.post("/projects", json={"metadata": {"name": "demo"}, "spec": {}})
    await devops.post("/projects/demo/stages", json={"metadata": {"name": "build"}, "spec": {
        "pod": {"spec": {"containers": [{"image": "alpine"}]}}}})
    await devops.post("/projects/demo/workflows",
                      json={"metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})


def _trigger(secret: str | None = "trigger-secret-1") -> dict:
    scm: dict = {"repo": "owner/repo", "push": {"enabled": True}}
    if secret is not None:
        scm["secret"] = secret
    return {"metadata": {"name": "on-push"}, "spec": {"type": "SCM", "scm": scm}}


async def test_trigger_secret_is_masked_on_every_route(devops):
    await _workflow(devops)
    created = await devops.post(TRIGGERS, json=_trigger())
    assert created.status_code == 201, created.text
    texts = [created.text, (await devops.get(f"{TRIGGERS}/on-push")).text,
             (await devops.get(TRIGGERS)).text,
             (await devops.put(f"{TRIGGERS}/on-push", json=_trigger())).text]
    for text in texts:
        _clean(text)
    assert (await devops.get(f"{TRIGGERS}/on-push")).json()["spec"]["scm"]["secret"] == MASK


@pytest.mark.parametrize("sent", [None, MASK])
async def test_trigger_update_without_secret_keeps_it(devops, cluster, sent):
    await _workflow(devops)
    await devops.post(TRIGGERS, json=_trigger())
    response = await devops.put(f"{TRIGGERS}/on-push", json=_trigger(sent))
    assert response.status_code == 200, response.text
    stored = await cluster.get(kinds.WORKFLOW_TRIGGER, "on-push", "cyclone-devops")
    assert stored["spec"]["scm"]["secret"] == "trigger-secret-1"
    replaced = await devops.put(f"{TRIGGERS}/on-push", json=_trigger("new-secret"))
    assert replaced.status_code == 200
    stored = await cluster.get(kinds.WORKFLOW_TRIGGER, "on-push", "cyclone-devops")
    assert stored["spec"]["scm"]["secret"] == "new-secret"
