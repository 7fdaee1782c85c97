"""The engine keeps a run inside its tenant, whoever created it: runs and stages written
straight into the cluster (as kubectl would) that reach outside their tenant fail with
reason TenancyViolation, and no pod is ever created for them."""

from __future__ import annotations

import asyncio
import json

import pytest

from cyclone.api import keys
from cyclone.engine.core.tenancy import record_patch
from cyclone.engine.placement import ExecutionTarget, checked_execution_target
from cyclone.kube import kinds

from .harness import (
    BACKENDS,
    NAMESPACE,
    PVC,
    overall,
    shell_stage,
    stage_status,
    workflow,
    workflow_run,
)

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

OTHER = "cyclone-other"


def with_pod(stage: dict, **pod_spec: object) -> dict:
    stage["spec"]["pod"]["spec"].update(pod_spec)
    return stage


def with_container(stage: dict, **fields: object) -> dict:
    stage["spec"]["pod"]["spec"]["containers"][0].update(fields)
    return stage


CASES: list[tuple[str, dict, dict, str]] = [
    # (case, extra run spec, stage pod spec change, field the message names)
    ("namespace", {"executionContext": {"namespace": OTHER}}, {},
     "spec.executionContext.namespace"),
    ("pvc", {"executionContext": {"pvc": "cyclone-pvc-other"}}, {},
     "spec.executionContext.pvc"),
    ("secret", {"globalVariables": [
        {"name": "T", "value": f"${{secrets.{OTHER}:gh/data.token}}"}]}, {},
     "spec.globalVariables[0].value"),
    ("volume", {"volumes": [{"type": "HostPath", "path": "/", "mountPath": "/host"}]}, {},
     "spec.volumes[0].type"),
    ("hostnetwork", {}, {"hostNetwork": True}, "spec.pod.spec.hostNetwork"),
    ("hostpath", {}, {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
     "spec.pod.spec.volumes[0].hostPath"),
    ("privileged", {}, {"container": {"securityContext": {"privileged": True}}},
     "spec.pod.spec.containers[0].securityContext.privileged"),
    ("caps", {}, {"container": {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}},
     "spec.pod.spec.containers[0].securityContext.capabilities.add"),
    ("hostport", {}, {"container": {"ports": [{"containerPort": 80, "hostPort": 8080}]}},
     "spec.pod.spec.containers[0].ports[0].hostPort"),
    ("tokens", {}, {"container": {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {
        "name": "cyclone-tenant-tokens", "key": "tokens"}}}]}},
     "spec.pod.spec.containers[0].env[0].valueFrom.secretKeyRef.name"),
]


def case_objects(case: str, run_spec: dict, change: dict) -> list[dict]:
    stage = shell_stage(f"s-{case}", "true")
    change = dict(change)
    if "container" in change:
        with_container(stage, **change.pop("container"))
    with_pod(stage, **change)
    return [stage, workflow(f"wf-{case}", [{"name": f"s-{case}"}]),
            workflow_run(f"r-{case}", f"wf-{case}", **run_spec)]


async def test_runs_reaching_outside_their_tenant_fail_before_any_pod(env):
    await env.cluster.create({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER}})
    await env.cluster.create({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gh", "namespace": OTHER},
        "stringData": {"token": "other-tenant-token"}})
    for case, run_spec, change, _ in CASES:
        await env.apply(*case_objects(case, run_spec, change))
    for case, _, _, field in CASES:
        run = await env.wait_phase(f"r-{case}", "Failed", within=30)
        assert overall(run)["reason"] == "TenancyViolation", (case, overall(run))
        assert field in overall(run)["message"], (case, overall(run))
        assert "pod" not in ((run["status"].get("stages") or {}).get(f"s-{case}") or {})
    assert await env.pods() == []
    assert (await env.cluster.list(kinds.POD, OTHER)).items == []


async def test_a_stage_edited_while_its_run_runs_fails_when_it_would_start(env):
    await env.apply(
        shell_stage("first", "sleep 2"), shell_stage("second", "true"),
        workflow("wf", [{"name": "first"}, {"name": "second", "depends": ["first"]}]),
        workflow_run("r1", "wf"),
    )
    await env.wait_run("r1", lambda r: stage_status(r, "first").get("phase") == "Running",
                       within=30)
    await env.cluster.patch(kinds.STAGE, "second", {"spec": {"pod": {"spec": {
        "hostPID": True}}}}, NAMESPACE)
    run = await env.wait_phase("r1", "Failed", within=60)
    second = stage_status(run, "second")
    assert second["reason"] == "TenancyViolation"
    assert "spec.pod.spec.hostPID" in second["message"]
    pods = await env.pods()
    assert {p["metadata"]["labels"][keys.LABEL_STAGE] for p in pods} == {"first"}


async def test_a_feature_an_admin_allowed_for_the_tenant_is_admitted(env):
    await env.cluster.patch(kinds.NAMESPACE, NAMESPACE, {"metadata": {"annotations": {
        keys.ANNOTATION_TENANT_INFO: json.dumps({"allowedPodFeatures": ["hostNetwork"]})}}})
    await env.apply(
        with_pod(shell_stage("net", "true"), hostNetwork=True),
        with_pod(shell_stage("pid", "true"), hostPID=True),
        workflow("wf-net", [{"name": "net"}]), workflow("wf-pid", [{"name": "pid"}]),
        workflow_run("net-1", "wf-net"), workflow_run("pid-1", "wf-pid"),
    )
    allowed, refused = await asyncio.gather(
        env.wait_phase("net-1", "Succeeded", within=60),
        env.wait_phase("pid-1", "Failed", within=30))
    assert overall(refused)["reason"] == "TenancyViolation"
    assert stage_status(allowed, "net")["phase"] == "Succeeded"


async def test_work_after_admission_goes_only_where_the_tenant_may(env):
    """A run whose executionContext was edited after admission gets its later work (GC) at
    the tenant's home, never in the namespace it now names."""
    opened = record_patch(None, keys.DEFAULT_TENANT, "w", ("cyclone-system-w", PVC))
    await env.cluster.create({"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
                              "metadata": {"name": "opened-w", **opened["metadata"]},
                              "spec": {"credential": {}}})
    try:
        home = ExecutionTarget(keys.CONTROL_CLUSTER_NAME, NAMESPACE, PVC)
        for context, expected in (
            ({"namespace": OTHER, "pvc": "cyclone-pvc-other"}, home),
            ({"cluster": "opened-w", "namespace": "cyclone-system-w"},
             ExecutionTarget("opened-w", "cyclone-system-w", PVC)),
            ({"cluster": "opened-w", "namespace": OTHER}, home),
            ({}, home),
        ):
            run = workflow_run("r", "wf", executionContext=context)
            assert await checked_execution_target(env.cluster, run) == expected, context
    finally:
        await env.cluster.delete(kinds.EXECUTION_CLUSTER, "opened-w")


async def test_a_feature_allowed_before_the_engine_cache_sees_it_is_admitted(env, monkeypatch):
    """Tenant policies come from the engine's informers, which can lag a change; what the
    cached policy refuses is read again before the run or stage is refused."""
    informer = env.engine.caches.tenant_namespaces
    labelled = asyncio.Event()
    informer.add_handler(lambda _type, obj, _old: labelled.set()
                         if obj["metadata"]["name"] == NAMESPACE else None)
    await env.cluster.patch(kinds.NAMESPACE, NAMESPACE, {"metadata": {"labels": {
        keys.LABEL_TENANT: keys.DEFAULT_TENANT}}})
    async with asyncio.timeout(30):
        await labelled.wait()
    stale = informer.get(None, NAMESPACE)
    monkeypatch.setattr(informer, "get", lambda namespace, name: stale
                        if name == NAMESPACE else None)
    await env.cluster.patch(kinds.NAMESPACE, NAMESPACE, {"metadata": {"annotations": {
        keys.ANNOTATION_TENANT_INFO: json.dumps({"allowedPodFeatures": ["hostNetwork"]})}}})
    await env.apply(with_pod(shell_stage("net", "true"), hostNetwork=True),
                    workflow("wf-net", [{"name": "net"}]), workflow_run("net-1", "wf-net"))
    run = await env.wait_phase("net-1", "Succeeded", within=60)
    assert stage_status(run, "net")["phase"] == "Succeeded"
