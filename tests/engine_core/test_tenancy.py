"""The tenant boundary of a run, decided from plain data."""

from __future__ import annotations

import json

import pytest

from cyclone.api import keys
from cyclone.engine.core.tenancy import (
    OPENED_PREFIX,
    RESERVED_SECRET_NAMES,
    Target,
    TenantPolicy,
    admission_violations,
    choose_execution_context,
    claimed_by_other,
    describe,
    execution_context_violations,
    fill_execution_context,
    opened_by,
    opened_record,
    pod_spec_violations,
    policy_for,
    record_patch,
    run_violations,
    secret_allowed,
    stage_violations,
    tenant_spec_of,
)

CONTROL = keys.CONTROL_CLUSTER_NAME


def ec(name: str, **record: list[dict]) -> dict:
    return {"metadata": {"name": name, "annotations": {
        OPENED_PREFIX + tenant: json.dumps(entries) for tenant, entries in record.items()}}}


def entry(integration: str, namespace: str, pvc: str) -> dict:
    return {"integration": integration, "namespace": namespace, "pvc": pvc}


CLUSTERS = [
    ec(CONTROL, ta=[entry("cluster", "cyclone-ta-worker", "cyclone-pvc-ta")],
       tb=[entry("cluster", "cyclone-tb-worker", "cyclone-pvc-tb")]),
    ec("remote", tb=[entry("a-remote", "builds", "cyclone-pvc-tb")]),
]
TB = policy_for("tb", None, CLUSTERS)


def tenant_namespace(tenant: str, **spec: object) -> dict:
    return {"metadata": {"name": f"cyclone-{tenant}",
                         "annotations": {keys.ANNOTATION_TENANT_INFO: json.dumps(spec)}}}


def container(**fields: object) -> dict:
    return {"name": "main", "image": "busybox", **fields}


def stage(**pod_spec: object) -> dict:
    return {"metadata": {"name": "s"},
            "spec": {"pod": {"spec": {"containers": [container()], **pod_spec}}}}


def run(**spec: object) -> dict:
    return {"metadata": {"name": "r", "namespace": "cyclone-tb"}, "spec": spec}


def fields(violations) -> list[str]:
    return [v.field for v in violations]


# -- policy and record --------------------------------------------------------------------

def test_the_record_on_execution_clusters_lists_what_each_tenant_opened_by_integration():
    assert [o.target for o in opened_by("tb", CLUSTERS)] == [
        Target("remote", "builds", "cyclone-pvc-tb"),
        Target(CONTROL, "cyclone-tb-worker", "cyclone-pvc-tb")]
    assert opened_by("tc", CLUSTERS) == ()


@pytest.mark.parametrize(("cluster", "namespace", "runs_in"), [
    (CONTROL, "cyclone-tb", True),
    (CONTROL, "cyclone-tb-worker", True),
    ("remote", "builds", True),
    (CONTROL, "cyclone-tb-x", False),
    (CONTROL, "cyclone-tb-worker-2", False),
    (CONTROL, "cyclone-ta-worker", False),
    (CONTROL, "builds", False),
    ("remote", "cyclone-tb", False),
    ("elsewhere", "builds", False),
])
def test_a_tenants_pods_run_only_at_home_and_where_it_opened_exactly(cluster, namespace,
                                                                       runs_in):
    """Tenant names may contain '-': tenant tb-x's namespace cyclone-tb-x is not tb's."""
    assert TB.runs_in(cluster, namespace) is runs_in


def test_a_malformed_record_opens_nothing():
    broken = {"metadata": {"name": "x", "annotations": {
        OPENED_PREFIX + "tb": "not json", OPENED_PREFIX + "tc": json.dumps([{"namespace": 1}])}}}
    assert opened_record(broken) == {}


def test_allowed_features_come_from_the_tenant_namespace_and_default_to_none():
    assert policy_for("tb", tenant_namespace("tb", allowedPodFeatures=["hostNetwork"])
                      ).allowed_features == {"hostNetwork"}
    assert policy_for("tb", None).allowed_features == frozenset()
    assert policy_for("tb", tenant_namespace("tb", allowedPodFeatures=["everything"])
                      ).allowed_features == frozenset()
    broken = {"metadata": {"annotations": {keys.ANNOTATION_TENANT_INFO: "{"}}}
    assert tenant_spec_of(broken).allowed_pod_features == []


def test_record_patch_adds_and_removes_a_tenants_entry_and_label():
    patch = record_patch(None, "tb", "cluster", ("cyclone-tb-worker", "cyclone-pvc-tb"))
    meta = patch["metadata"]
    assert meta["labels"] == {OPENED_PREFIX + "tb": "true"}
    obj = {"metadata": {"name": CONTROL, "annotations": meta["annotations"]}}
    assert opened_record(obj) == {"tb": [entry("cluster", "cyclone-tb-worker", "cyclone-pvc-tb")]}
    second = record_patch(obj, "tb", "other", ("cyclone-tb-2", "cyclone-pvc-tb"))
    obj["metadata"]["annotations"] = second["metadata"]["annotations"]
    assert [e["integration"] for e in opened_record(obj)["tb"]] == ["cluster", "other"]
    closed = record_patch(obj, "tb", "other", None)
    obj["metadata"]["annotations"] = closed["metadata"]["annotations"]
    assert [e["integration"] for e in opened_record(obj)["tb"]] == ["cluster"]
    gone = record_patch(obj, "tb", "cluster", None)["metadata"]
    assert gone == {"labels": {OPENED_PREFIX + "tb": None},
                    "annotations": {OPENED_PREFIX + "tb": None}}


def test_a_namespace_another_tenant_runs_in_is_claimed():
    assert claimed_by_other(CLUSTERS[0], "tb", "cyclone-ta-worker") == "ta"
    assert claimed_by_other(CLUSTERS[0], "tb", "cyclone-tb-worker") is None
    assert claimed_by_other(None, "tb", "anything") is None


# -- execution context ---------------------------------------------------------------------

def test_new_runs_execute_in_the_first_opened_cluster_else_at_home():
    assert choose_execution_context("tb", CLUSTERS) == {
        "cluster": "remote", "namespace": "builds", "pvc": "cyclone-pvc-tb"}
    assert choose_execution_context("tc", CLUSTERS) == {
        "cluster": CONTROL, "namespace": "cyclone-tc", "pvc": "cyclone-pvc-tc"}


def test_a_given_cluster_and_namespace_are_kept_and_a_partial_context_is_completed():
    chosen = {"cluster": "c", "namespace": "n", "pvc": "p"}
    assert fill_execution_context({"pvc": "mine"}, chosen) == {
        "cluster": "c", "namespace": "n", "pvc": "mine"}
    assert fill_execution_context({"cluster": "x", "namespace": "y"}, chosen) == {
        "cluster": "x", "namespace": "y"}
    assert fill_execution_context(None, chosen) == chosen


@pytest.mark.parametrize("context", [
    None,
    {},
    {"cluster": CONTROL, "namespace": "cyclone-tb", "pvc": "cyclone-pvc-tb"},
    {"cluster": CONTROL, "namespace": "cyclone-tb-worker"},
    {"cluster": "remote", "namespace": "builds", "pvc": "cyclone-pvc-tb"},
])
def test_the_tenants_own_execution_contexts_are_allowed(context):
    assert execution_context_violations(TB, context) == []


@pytest.mark.parametrize(("context", "field", "words"), [
    ({"namespace": "cyclone-ta"}, "namespace", "'cyclone-ta'"),
    ({"cluster": CONTROL, "namespace": "cyclone-ta-worker", "pvc": "cyclone-pvc-ta"},
     "namespace", "'cyclone-ta-worker'"),
    ({"cluster": CONTROL, "namespace": "cyclone-tb-worker", "pvc": "cyclone-pvc-ta"},
     "pvc", "'cyclone-pvc-ta'"),
    ({"cluster": "a-cluster", "namespace": "x"}, "cluster", "not opened cluster 'a-cluster'"),
])
def test_an_execution_context_of_another_tenant_is_refused(context, field, words):
    [violation] = execution_context_violations(TB, context)
    assert violation.field == f"spec.executionContext.{field}"
    assert words in violation.message and "'tb'" in violation.message


# -- secrets -----------------------------------------------------------------------------------

def test_secret_references_must_stay_in_the_run_namespace_and_off_reserved_secrets():
    assert secret_allowed(TB, "cyclone-tb", "gh")
    assert not secret_allowed(TB, "cyclone-ta", "gh")
    assert not secret_allowed(TB, "", "gh")
    for name in RESERVED_SECRET_NAMES:
        assert not secret_allowed(TB, "cyclone-tb", name)
    found = run_violations(TB, run(
        globalVariables=[{"name": "own", "value": "${secrets.cyclone-tb:gh/data.token}"},
                         {"name": "x", "value": "${secrets.cyclone-ta:gh/data.integration}"}],
        stages=[{"name": "s", "parameters": [
            {"name": "p", "value": "a ${secrets.cyclone-tb:cyclone-tenant-tokens/data.t} b"}]}]))
    assert fields(found) == ["spec.globalVariables[1].value",
                             "spec.stages[0].parameters[0].value"]
    assert "cyclone-ta/gh is outside tenant 'tb'" in found[0].message
    assert "kept by Cyclone" in found[1].message


# -- pod features ------------------------------------------------------------------------------

@pytest.mark.parametrize(("pod_spec", "field", "feature"), [
    ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
     "spec.pod.spec.volumes[0].hostPath", "hostPath"),
    ({"hostNetwork": True}, "spec.pod.spec.hostNetwork", "hostNetwork"),
    ({"hostPID": True}, "spec.pod.spec.hostPID", "hostPID"),
    ({"hostIPC": True}, "spec.pod.spec.hostIPC", "hostIPC"),
    ({"containers": [container(), container(securityContext={"privileged": True})]},
     "spec.pod.spec.containers[1].securityContext.privileged", "privileged"),
    ({"initContainers": [container(securityContext={"allowPrivilegeEscalation": True})]},
     "spec.pod.spec.initContainers[0].securityContext.allowPrivilegeEscalation", "privileged"),
    ({"containers": [container(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})]},
     "spec.pod.spec.containers[0].securityContext.capabilities.add", "capabilities"),
    ({"containers": [container(ports=[{"containerPort": 80, "hostPort": 8080}])]},
     "spec.pod.spec.containers[0].ports[0].hostPort", "hostPort"),
])
def test_escaping_pod_features_are_refused_unless_an_admin_allowed_them(pod_spec, field, feature):
    [violation] = stage_violations(TB, stage(**pod_spec))
    assert (violation.field, violation.feature) == (field, feature)
    assert f"pod feature {feature!r}" in violation.message
    allowed = TenantPolicy("tb", frozenset({feature}))
    assert stage_violations(allowed, stage(**pod_spec)) == []


def test_features_set_to_false_or_dropped_capabilities_are_fine():
    spec = stage(hostNetwork=False, containers=[container(securityContext={
        "privileged": False, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}}, ports=[{"containerPort": 80}])])
    assert stage_violations(TB, spec) == []


@pytest.mark.parametrize(("pod_spec", "field"), [
    ({"containers": [container(env=[{"name": "T", "valueFrom": {"secretKeyRef": {
        "name": "cyclone-tenant-tokens", "key": "x"}}}])]},
     "spec.pod.spec.containers[0].env[0].valueFrom.secretKeyRef.name"),
    ({"containers": [container(envFrom=[{"secretRef": {"name": "cyclone-engine-key"}}])]},
     "spec.pod.spec.containers[0].envFrom[0].secretRef.name"),
    ({"volumes": [{"name": "s", "secret": {"secretName": "cyclone-pvc-watcher-token"}}]},
     "spec.pod.spec.volumes[0].secret.secretName"),
    ({"volumes": [{"name": "p", "projected": {"sources": [
        {"configMap": {"name": "c"}}, {"secret": {"name": "cyclone-engine-key"}}]}}]},
     "spec.pod.spec.volumes[0].projected.sources[1].secret.name"),
    ({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "cyclone-pvc-ta"}}]},
     "spec.pod.spec.volumes[0].persistentVolumeClaim.claimName"),
])
def test_pod_references_to_reserved_secrets_or_another_tenants_pvc_are_refused(pod_spec, field):
    [violation] = stage_violations(TB, stage(**pod_spec))
    assert violation.field == field and violation.feature is None


def test_own_secrets_config_maps_and_pvc_may_be_mounted():
    spec = {"containers": [container(
        env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "gh", "key": "k"}}},
             {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}])],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "cyclone-pvc-tb"}},
                    {"name": "o", "persistentVolumeClaim": {"claimName": "my-cache"}},
                    {"name": "s", "secret": {"secretName": "gh"}}]}
    assert pod_spec_violations(TB, spec) == []


def test_run_volumes_are_checked_like_pod_volumes():
    found = run_violations(TB, run(volumes=[
        {"type": "HostPath", "path": "/", "mountPath": "/host"},
        {"type": "PVC", "objectName": "cyclone-pvc-ta", "mountPath": "/a"},
        {"type": "Secret", "objectName": "cyclone-tenant-tokens", "mountPath": "/t"},
        {"type": "PVC", "objectName": "cyclone-pvc-tb", "mountPath": "/b"},
        {"type": "ConfigMap", "objectName": "c", "mountPath": "/c"},
    ]))
    assert fields(found) == ["spec.volumes[0].type", "spec.volumes[1].objectName",
                             "spec.volumes[2].objectName"]
    assert found[0].feature == "hostPath"


def test_admission_names_the_object_of_each_violation():
    workflow = {"metadata": {"name": "wf"}, "spec": {"globalVariables": [
        {"name": "x", "value": "${secrets.cyclone-ta:gh/data.integration}"}]}}
    found = admission_violations(
        TB, run(executionContext={"namespace": "cyclone-ta"}), workflow,
        {"s1": stage(hostNetwork=True), "s2": stage()})
    text = describe(found)
    assert fields(found) == ["spec.executionContext.namespace", "spec.globalVariables[0].value",
                             "spec.pod.spec.hostNetwork"]
    assert "workflow wf spec.globalVariables[0].value" in text
    assert "stage s1 spec.pod.spec.hostNetwork" in text
    assert admission_violations(TB, run(), workflow | {"spec": {}}, {"s2": stage()}) == []


def test_malformed_specs_do_not_break_the_check():
    weird = {"metadata": {}, "spec": {"pod": {"spec": {
        "containers": ["x", {"securityContext": "y", "ports": "z", "env": [1]}],
        "volumes": {"not": "a list"}}}}}
    assert stage_violations(TB, weird) == []
    assert run_violations(TB, {"spec": {"volumes": "x", "executionContext": None}}) == []
