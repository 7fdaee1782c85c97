"""Objects and requests shared by the trigger tests."""

from __future__ import annotations

import httpx

from cyclone.api import keys
from cyclone.engine.core.scm import Provider, signed_headers
from cyclone.kube import kinds
from cyclone.kube.protocol import Cluster

ADMIN_TOKEN = "admin-secret-token"
API = "/apis/v1alpha1"
NAMESPACE = keys.tenant_namespace(keys.DEFAULT_TENANT)
PROJECT = "demo"
WORKFLOW = "build"
EVENT_HEADER = {Provider.GITHUB: "X-GitHub-Event", Provider.GITLAB: "X-Gitlab-Event",
                Provider.BITBUCKET: "X-Event-Key", Provider.SVN: "X-Subversion-Event"}
DELIVERY_HEADER = {Provider.GITHUB: "X-GitHub-Delivery", Provider.GITLAB: "X-Gitlab-Event-UUID",
                   Provider.BITBUCKET: "X-Request-Id", Provider.SVN: "X-Subversion-Delivery"}


async def allow_local_addresses(admin: httpx.AsyncClient, tenant: str) -> None:
    """As an admin, let `tenant` use SCM servers on local addresses (the fakes' 127.0.0.1)."""
    body = (await admin.get(f"/tenants/{tenant}")).json()
    body["spec"]["allowLocalAddresses"] = True
    response = await admin.put(f"/tenants/{tenant}", json={"metadata": body["metadata"],
                                                           "spec": body["spec"]})
    assert response.status_code == 200, response.text


async def create_integration(admin: httpx.AsyncClient, name: str, scm_type: str,
                             server: str | None = None, **scm: object) -> None:
    source = {"type": scm_type, "token": "tok-123", **scm}
    if server:
        source["server"] = server
        await allow_local_addresses(admin, keys.DEFAULT_TENANT)
    response = await admin.post("/integrations", json={
        "metadata": {"name": name}, "spec": {"type": "SCM", "scm": source}})
    assert response.status_code == 201, response.text


async def create_workflow(cluster: Cluster, name: str = WORKFLOW) -> None:
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {keys.LABEL_PROJECT: PROJECT}},
        "spec": {"stages": [{"name": "compile"}]},
    }, namespace=NAMESPACE)


async def create_resource(cluster: Cluster, name: str, resource_type: str) -> None:
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Resource",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {keys.LABEL_PROJECT: PROJECT}},
        "spec": {"type": resource_type, "parameters": []},
    }, namespace=NAMESPACE)


def scm_trigger_object(name: str, integration: str, repo: str, *, secret: str | None = "s3cret",
                       workflow: str = WORKFLOW, disabled: bool = False,
                       resources: list[dict] | None = None, **policies: object) -> dict:
    scm: dict = {"repo": repo, **policies}
    if secret:
        scm["secret"] = secret
    return {
        "apiVersion": keys.API_VERSION, "kind": "WorkflowTrigger",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {keys.LABEL_PROJECT: PROJECT, keys.LABEL_WORKFLOW: workflow,
                                keys.LABEL_TRIGGER_EVENT_SOURCE: integration}},
        "spec": {"type": "SCM", "workflowRef": {"kind": "Workflow", "name": workflow},
                 "disabled": disabled, "scm": scm, "resources": resources or []},
    }


async def create_trigger(cluster: Cluster, trigger: dict) -> dict:
    return await cluster.create(trigger, namespace=NAMESPACE)


async def post_event(client: httpx.AsyncClient, integration: str, provider: Provider,
                     event: str, body: bytes, *, secret: str | None = "s3cret",
                     delivery: str | None = "delivery-1",
                     headers: dict | None = None) -> httpx.Response:
    sent = {"Content-Type": "application/json", EVENT_HEADER[provider]: event}
    if secret is not None:
        sent.update(signed_headers(provider, body, secret))
    if delivery is not None:
        sent[DELIVERY_HEADER[provider]] = delivery
    sent.update(headers or {})
    return await client.post(
        f"/tenants/{keys.DEFAULT_TENANT}/webhook?sourceType=SCM&integration={integration}",
        content=body, headers=sent)


async def runs(cluster: Cluster) -> list[dict]:
    return (await cluster.list(kinds.WORKFLOW_RUN, NAMESPACE)).items


def parameters(run: dict, resource: str) -> dict[str, str]:
    for entry in run["spec"].get("resources") or []:
        if entry["name"] == resource:
            return {p["name"]: p.get("value") for p in entry.get("parameters") or []}
    return {}


def shell_stage(name: str, script: str) -> dict:
    """A pod stage running ``sh -c script``."""
    return {
        "apiVersion": keys.API_VERSION, "kind": "Stage",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"pod": {"spec": {"containers": [
            {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]}}},
    }


def workflow_object(name: str, stages: list[str]) -> dict:
    return {
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"stages": [{"name": stage} for stage in stages]},
    }


async def prepare_tenant(cluster: Cluster) -> None:
    """The default tenant namespace and its PVC."""
    await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": NAMESPACE}})
    await cluster.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": keys.tenant_pvc_name(keys.DEFAULT_TENANT), "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
    })
