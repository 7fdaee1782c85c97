"""The tenant boundary: the less common ways a pod or value could cross it."""

from __future__ import annotations

import pytest

from cyclone.engine.core.tenancy import (
    OPENED_PREFIX,
    TenantPolicy,
    Violation,
    admission_violations,
    describe,
    execution_context_violations,
    fill_execution_context,
    opened_record,
    pod_spec_violations,
    policy_for,
    secret_references,
    stage_violations,
)

from .test_tenancy import CLUSTERS, TB, container, ec, entry

TA = TenantPolicy("ta")


@pytest.mark.parametrize("proc_mount", ["Unmasked", "anything"])
def test_an_unmasked_proc_mount_is_a_privileged_feature(proc_mount):
    spec = {"containers": [container(securityContext={"procMount": proc_mount})]}
    [violation] = pod_spec_violations(TA, spec)
    assert violation.feature == "privileged"
    assert violation.field == "spec.pod.spec.containers[0].securityContext.procMount"
    assert pod_spec_violations(TenantPolicy("ta", frozenset({"privileged"})), spec) == []


@pytest.mark.parametrize("proc_mount", [None, "", "Default"])
def test_the_default_proc_mount_is_fine(proc_mount):
    spec = {"containers": [container(securityContext={"procMount": proc_mount})]}
    assert pod_spec_violations(TA, spec) == []


def test_an_empty_host_network_value_does_not_ask_for_it():
    assert pod_spec_violations(TA, {"hostNetwork": "", "containers": [container()]}) == []


def test_a_privileged_ephemeral_container_is_refused():
    spec = {"containers": [container()],
            "ephemeralContainers": [container(securityContext={"privileged": True})]}
    [violation] = pod_spec_violations(TA, spec)
    assert violation.field == "spec.pod.spec.ephemeralContainers[0].securityContext.privileged"


def test_a_stage_value_naming_another_tenants_secret_is_refused():
    stage = {"spec": {"pod": {"inputs": {"arguments": [
        {"name": "token", "value": "${secrets.cyclone-tb:deploy/token}"}]}}}}
    [violation] = stage_violations(TA, stage)
    assert violation.field == "spec.pod.inputs.arguments[0].value"
    assert "cyclone-tb/deploy is outside tenant 'ta'" in violation.message


def test_a_stage_with_a_pod_spec_reports_both_its_secret_values_and_pod_features():
    stage = {"spec": {"pod": {
        "inputs": {"arguments": [{"name": "t", "value": "${secrets.cyclone-tb:x/y}"}]},
        "spec": {"hostPID": True, "containers": [container()]},
    }}}
    fields = [v.field for v in stage_violations(TA, stage)]
    assert fields == ["spec.pod.inputs.arguments[0].value", "spec.pod.spec.hostPID"]


def test_admission_names_the_stage_and_keeps_the_feature_an_admin_could_allow():
    stage = {"spec": {"pod": {"spec": {"containers": [
        container(securityContext={"privileged": True})]}}}}
    [violation] = admission_violations(TA, {"spec": {}}, None, {"build": stage})
    assert violation.subject == "stage build"
    assert violation.feature == "privileged"
    assert str(violation).startswith(
        "stage build spec.pod.spec.containers[0].securityContext.privileged: a privileged "
        "container or privilege escalation is not allowed for tenant 'ta'")


def test_a_violation_without_subject_reads_field_then_message():
    assert str(Violation("spec.x", "not yours")) == "spec.x: not yours"


def test_describe_lists_five_and_counts_the_rest():
    found = [Violation(f"f{i}", "bad") for i in range(7)]
    assert describe(found) == "f0: bad; f1: bad; f2: bad; f3: bad; f4: bad (and 2 more)"
    assert describe(found[:5]) == "f0: bad; f1: bad; f2: bad; f3: bad; f4: bad"


def test_another_tenants_pvc_is_refused_with_a_reason():
    spec = {"containers": [container()], "volumes": [
        {"name": "w", "persistentVolumeClaim": {"claimName": "cyclone-pvc-tb"}}]}
    [violation] = pod_spec_violations(TA, spec)
    assert violation.message == ("PVC 'cyclone-pvc-tb' is another tenant's; tenant 'ta' may "
                                 "mount only its own PVC")


def test_policy_for_holds_the_tenant_and_the_clusters_it_opened():
    policy = policy_for("tb", None, CLUSTERS)
    assert policy.tenant == "tb"
    context = {"cluster": "remote", "namespace": "builds", "pvc": "cyclone-pvc-tb"}
    assert execution_context_violations(policy, context) == []
    assert execution_context_violations(policy_for("ta", None, CLUSTERS), context) != []


def test_a_wrong_namespace_names_the_tenants_own_namespaces_there():
    [violation] = execution_context_violations(
        TB, {"cluster": "remote", "namespace": "other", "pvc": "cyclone-pvc-tb"})
    assert violation.field == "spec.executionContext.namespace"
    assert violation.message == ("namespace 'other' of cluster 'remote' is not tenant 'tb''s "
                                 "(its namespaces there: 'builds')")


def test_a_wrong_pvc_names_the_tenants_own_pvc_there():
    [violation] = execution_context_violations(
        TB, {"cluster": "remote", "namespace": "builds", "pvc": "cyclone-pvc-ta"})
    assert violation.field == "spec.executionContext.pvc"
    assert violation.message == ("PVC 'cyclone-pvc-ta' in namespace 'builds' is not tenant "
                                 "'tb''s (its PVC there: 'cyclone-pvc-tb')")


def test_a_context_naming_only_a_cluster_is_completed_from_the_chosen_one():
    chosen = {"cluster": "home", "namespace": "cyclone-ta", "pvc": "cyclone-pvc-ta"}
    assert fill_execution_context({"cluster": "remote"}, chosen) == {
        "cluster": "remote", "namespace": "cyclone-ta", "pvc": "cyclone-pvc-ta"}


def test_opened_records_are_read_past_unrelated_and_unreadable_annotations():
    cluster = {"metadata": {"name": "remote", "annotations": {
        "a.example.com/unrelated": "x",
        OPENED_PREFIX + "bad": "{not json",
        OPENED_PREFIX + "tb": '[{"integration": "i", "namespace": "n", "pvc": "p"}]',
    }}}
    assert opened_record(cluster) == {"tb": [entry("i", "n", "p")]}


@pytest.mark.parametrize("text", ["42", '{"integration": "i"}', "null"])
def test_an_opened_record_that_is_not_a_list_is_left_out(text):
    assert opened_record({"metadata": {"annotations": {OPENED_PREFIX + "tb": text}}}) == {}


def test_an_opened_entry_with_a_non_string_field_is_left_out():
    cluster = ec("remote", tb=[{"integration": "i", "namespace": "n", "pvc": 7},
                               entry("j", "n", "p")])
    assert opened_record(cluster) == {"tb": [entry("j", "n", "p")]}


def test_secret_references_name_the_field_from_the_top():
    value = {"env": ["${secrets.ns:s/k}"], "x": "${secrets.other:t/k} ${secrets.ns:u/k}"}
    assert secret_references(value) == [
        ("env[0]", "ns", "s"), ("x", "other", "t"), ("x", "ns", "u")]
