"""The server answers early what the engine enforces: objects reaching outside their tenant
are refused with 403 (another tenant's or Cyclone's things) or 422 (a pod feature the tenant
is not allowed), naming the field; opening a cluster records the tenant's claim on the
ExecutionCluster and refuses another tenant's namespace."""

from __future__ import annotations

import json

import pytest

from cyclone.api import keys
from cyclone.engine.core.tenancy import (
    OPENED_PREFIX,
    RESERVED_SECRET_NAMES,
    opened_record,
)
from cyclone.engine.core.tenancy import RESERVED_SECRET_NAMES as RESERVED_INTEGRATION_NAMES
from cyclone.engine.signing import ENGINE_KEY_SECRET
from cyclone.kube import errors, kinds
from cyclone.server.auth import TOKEN_SECRET_NAME
from cyclone.server.watchdog import WATCHDOG_TOKEN_SECRET

from .helpers import create_tenant, make_client, tenant_token

RUNS = "/projects/demo/workflows/ci/workflowruns"


def stage(name: str = "build", **pod_spec: object) -> dict:
    container = {"name": "main", "image": "busybox", "command": ["true"]}
    container.update(pod_spec.pop("container", {}))
    return {"metadata": {"name": name},
            "spec": {"pod": {"spec": {"containers": [container], **pod_spec}}}}


async def _setup(client) -> None:
    assert (await client.post("/projects", json={"metadata": {"name": "demo"}})).status_code \
        == 201
    assert (await client.post("/projects/demo/stages", json=stage())).status_code == 201
    response = await client.post("/projects/demo/workflows", json={
        "metadata": {"name": "ci"}, "spec": {"stages": [{"name": "build"}]}})
    assert response.status_code == 201, response.text


def causes(response) -> list[str]:
    return [c["field"] for c in response.json()["details"]["causes"]]


def test_reserved_secret_names_cover_every_secret_cyclone_keeps():
    assert {TOKEN_SECRET_NAME, WATCHDOG_TOKEN_SECRET, ENGINE_KEY_SECRET} <= RESERVED_SECRET_NAMES
    assert RESERVED_INTEGRATION_NAMES <= RESERVED_SECRET_NAMES


# -- stages and templates ---------------------------------------------------------------------

@pytest.mark.parametrize(("pod_spec", "field"), [
    ({"hostNetwork": True}, "spec.pod.spec.hostNetwork"),
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
     "spec.pod.spec.volumes[0].hostPath"),
    ({"container": {"securityContext": {"privileged": True}}},
     "spec.pod.spec.containers[0].securityContext.privileged"),
    ({"container": {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}},
     "spec.pod.spec.containers[0].securityContext.capabilities.add"),
    ({"container": {"ports": [{"containerPort": 80, "hostPort": 80}]}},
     "spec.pod.spec.containers[0].ports[0].hostPort"),
])
async def test_a_stage_with_an_escaping_feature_is_refused_with_422(devops, pod_spec, field):
    await devops.post("/projects", json={"metadata": {"name": "demo"}})
    response = await devops.post("/projects/demo/stages", json=stage(**pod_spec))
    assert response.status_code == 422, response.text
    assert causes(response) == [field]
    assert field in response.json()["message"]
    response = await devops.post("/templates", json=stage("tpl", **pod_spec))
    assert response.status_code == 422, response.text


async def test_an_update_adding_an_escaping_feature_is_refused(devops):
    await _setup(devops)
    response = await devops.put("/projects/demo/stages/build", json=stage(hostPID=True))
    assert response.status_code == 422
    assert causes(response) == ["spec.pod.spec.hostPID"]


async def test_a_feature_an_admin_allowed_is_accepted_for_that_tenant_only(app, admin, devops):
    tenant = (await admin.get("/tenants/devops")).json()
    tenant["spec"]["allowedPodFeatures"] = ["hostNetwork"]
    response = await admin.put("/tenants/devops", json=tenant)
    assert response.status_code == 200, response.text
    await devops.post("/projects", json={"metadata": {"name": "demo"}})
    assert (await devops.post("/projects/demo/stages",
                              json=stage(hostNetwork=True))).status_code == 201
    response = await devops.post("/projects/demo/stages", json=stage("p", hostPID=True))
    assert response.status_code == 422
    await create_tenant(admin, "qa")
    async with make_client(app, await tenant_token(admin, "qa")) as qa:
        await qa.post("/projects", json={"metadata": {"name": "demo"}})
        response = await qa.post("/projects/demo/stages", json=stage(hostNetwork=True))
    assert response.status_code == 422


@pytest.mark.parametrize(("pod_spec", "field"), [
    ({"container": {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {
        "name": "cyclone-tenant-tokens", "key": "tokens"}}}]}},
     "spec.pod.spec.containers[0].env[0].valueFrom.secretKeyRef.name"),
    ({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "cyclone-pvc-qa"}}]},
     "spec.pod.spec.volumes[0].persistentVolumeClaim.claimName"),
    ({"container": {"env": [{"name": "T", "value": "${secrets.cyclone-qa:gh/data.token}"}]}},
     "spec.pod.spec.containers[0].env[0].value"),
])
async def test_a_stage_reaching_anothers_secret_or_pvc_is_refused_with_403(devops, pod_spec,
                                                                          field):
    await devops.post("/projects", json={"metadata": {"name": "demo"}})
    response = await devops.post("/projects/demo/stages", json=stage(**pod_spec))
    assert response.status_code == 403, response.text
    assert causes(response) == [field]


async def test_a_workflow_naming_another_namespaces_secret_is_refused(devops):
    await devops.post("/projects", json={"metadata": {"name": "demo"}})
    response = await devops.post("/projects/demo/workflows", json={
        "metadata": {"name": "wf"}, "spec": {"stages": [], "globalVariables": [
            {"name": "T", "value": "${secrets.cyclone-qa:gh/data.token}"}]}})
    assert response.status_code == 403
    assert causes(response) == ["spec.globalVariables[0].value"]


async def test_a_resource_naming_another_namespaces_secret_is_refused(devops):
    await devops.post("/projects", json={"metadata": {"name": "demo"}})
    resource = {"metadata": {"name": "src"}, "spec": {"type": "Git", "parameters": [
        {"name": "SCM_TOKEN", "value": "${secrets.cyclone-qa:gh/data.token}"}]}}
    response = await devops.post("/projects/demo/resources", json=resource)
    assert response.status_code == 403
    assert causes(response) == ["spec.parameters[0].value"]
    response = await devops.post("/resourcetypes", json=resource)
    assert response.status_code == 403
    resource["spec"]["parameters"][0]["value"] = "${secrets.cyclone-devops:gh/data.token}"
    assert (await devops.post("/projects/demo/resources", json=resource)).status_code == 201


# -- runs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "field"), [
    ({"executionContext": {"cluster": keys.CONTROL_CLUSTER_NAME, "namespace": "cyclone-qa",
                           "pvc": "cyclone-pvc-qa"}}, "spec.executionContext.namespace"),
    ({"executionContext": {"namespace": "cyclone-devops", "pvc": "cyclone-pvc-qa"}},
     "spec.executionContext.pvc"),
    ({"executionContext": {"cluster": "qa-cluster", "namespace": "cyclone-qa"}},
     "spec.executionContext.cluster"),
    ({"globalVariables": [{"name": "T", "value": "${secrets.cyclone-qa:gh/data.token}"}]},
     "spec.globalVariables[0].value"),
    ({"stages": [{"name": "build", "parameters": [
        {"name": "k", "value": "${secrets.cyclone-devops:cyclone-tenant-tokens/data.x}"}]}]},
     "spec.stages[0].parameters[0].value"),
    ({"volumes": [{"type": "PVC", "objectName": "cyclone-pvc-qa", "mountPath": "/q"}]},
     "spec.volumes[0].objectName"),
])
async def test_a_run_reaching_outside_its_tenant_is_refused_with_403(devops, cluster, spec,
                                                                      field):
    await _setup(devops)
    response = await devops.post(RUNS, json={"metadata": {"name": "r1"}, "spec": spec})
    assert response.status_code == 403, response.text
    assert causes(response) == [field]
    assert field in response.json()["message"]
    assert (await cluster.list(kinds.WORKFLOW_RUN, "cyclone-devops")).items == []


async def test_a_run_with_a_host_path_volume_is_refused_with_422(devops):
    await _setup(devops)
    response = await devops.post(RUNS, json={"spec": {"volumes": [
        {"type": "HostPath", "path": "/", "mountPath": "/host"}]}})
    assert response.status_code == 422
    assert causes(response) == ["spec.volumes[0].type"]


async def test_a_run_in_its_own_namespace_with_its_own_secrets_is_created(devops):
    await _setup(devops)
    response = await devops.post(RUNS, json={"spec": {
        "executionContext": {"namespace": "cyclone-devops"},
        "globalVariables": [{"name": "T", "value": "${secrets.cyclone-devops:gh/data.t}"}]}})
    assert response.status_code == 201, response.text


async def test_a_trigger_whose_runs_would_reach_outside_is_refused(devops):
    await _setup(devops)
    response = await devops.post("/projects/demo/workflows/ci/workflowtriggers", json={
        "metadata": {"name": "nightly"}, "spec": {
            "type": "Cron", "cron": {"schedule": "0 0 * * *"},
            "executionContext": {"namespace": "cyclone-qa"}}})
    assert response.status_code == 403, response.text
    assert causes(response) == ["spec.executionContext.namespace"]


# -- opening clusters -----------------------------------------------------------------------------

CONTROL = {"metadata": {"name": "here"}, "spec": {"type": "Cluster", "cluster": {
    "isControlCluster": True}}}


async def test_opening_records_the_tenants_namespace_and_pvc_on_the_execution_cluster(
        devops, cluster):
    await devops.post("/integrations", json=CONTROL)
    assert (await devops.put("/integrations/here/opencluster")).status_code == 200
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, keys.CONTROL_CLUSTER_NAME)
    assert opened_record(ec)["devops"] == [{"integration": "here",
                                            "namespace": "cyclone-devops-worker",
                                            "pvc": "cyclone-pvc-devops"}]
    assert ec["metadata"]["labels"][OPENED_PREFIX + "devops"] == "true"
    await _setup(devops)
    run = (await devops.post(RUNS, json={})).json()
    assert run["spec"]["executionContext"] == {
        "cluster": keys.CONTROL_CLUSTER_NAME, "namespace": "cyclone-devops-worker",
        "pvc": "cyclone-pvc-devops"}
    assert (await devops.put("/integrations/here/closecluster")).status_code == 200
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, keys.CONTROL_CLUSTER_NAME)
    assert "devops" not in opened_record(ec)
    assert OPENED_PREFIX + "devops" not in (ec["metadata"].get("labels") or {})
    response = await devops.post(RUNS, json={"spec": {"executionContext": {
        "namespace": "cyclone-devops-worker"}}})
    assert response.status_code == 403


async def test_a_remote_cluster_is_forgotten_when_its_last_tenant_closes_it(devops, cluster):
    await devops.post("/integrations", json={"metadata": {"name": "w"}, "spec": {
        "type": "Cluster", "cluster": {"clusterName": "w1", "namespace": "builds"}}})
    assert (await devops.put("/integrations/w/opencluster")).status_code == 200
    ec = await cluster.get(kinds.EXECUTION_CLUSTER, "w1")
    assert json.loads(ec["metadata"]["annotations"][OPENED_PREFIX + "devops"])[0][
        "namespace"] == "builds"
    assert (await devops.put("/integrations/w/closecluster")).status_code == 200
    with pytest.raises(errors.NotFound):
        await cluster.get(kinds.EXECUTION_CLUSTER, "w1")


async def test_opening_another_tenants_metadata_namespace_is_refused(app, admin, devops):
    await create_tenant(admin, "devops-x")
    await devops.post("/integrations", json={"metadata": {"name": "c"}, "spec": {
        "type": "Cluster", "cluster": {"isControlCluster": True, "namespace": "cyclone-devops-x"}}})
    response = await devops.put("/integrations/c/opencluster")
    assert response.status_code == 403
    assert "another tenant's metadata namespace" in response.json()["message"]
    await devops.post("/integrations", json={"metadata": {"name": "r"}, "spec": {
        "type": "Cluster", "cluster": {"clusterName": "r1", "namespace": "cyclone-devops-x"}}})
    assert (await devops.put("/integrations/r/opencluster")).status_code == 403


async def test_opening_with_another_tenants_pvc_is_refused(devops):
    await devops.post("/integrations", json={"metadata": {"name": "c"}, "spec": {
        "type": "Cluster", "cluster": {"isControlCluster": True, "pvc": "cyclone-pvc-qa"}}})
    response = await devops.put("/integrations/c/opencluster")
    assert response.status_code == 403
    assert "'cyclone-pvc-qa'" in response.json()["message"]
