"""Malformed objects are rejected with messages that name the field path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cyclone.api import FieldError, ValidationFailed, ensure_valid, parse_duration, validate_object
from cyclone.api.validation import find_cycle, format_path

from .manifests import load_manifest


def _messages(obj: dict) -> list[str]:
    return [str(error) for error in validate_object(obj)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("30min", timedelta(minutes=30)),
        ("1H30MIN", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2h", timedelta(hours=2)),
        ("1m30s", timedelta(minutes=1, seconds=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["1h:30m", "abc", "-1h", "", "30", "h", "1x", "1h 30m", "1h30"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_negative_duration_says_so() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration("-1h")


def test_format_path() -> None:
    assert format_path(["spec", "stages", 2, "depends", 0]) == "spec.stages[2].depends[0]"


def test_find_cycle_names_the_cycle_in_order() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None


def test_workflow_cycle_is_rejected_naming_the_cycle() -> None:
    wf = load_manifest("workflow")
    wf["spec"]["stages"][0]["depends"] = ["deploy"]
    assert _messages(wf) == [
        "spec.stages[0].depends: cycle prepare -> deploy -> approve -> build -> prepare"
    ]


def test_self_dependency_is_a_cycle() -> None:
    wf = load_manifest("workflow")
    wf["spec"]["stages"][2]["depends"] = ["lint"]
    assert _messages(wf) == ["spec.stages[2].depends: cycle lint -> lint"]


def test_unknown_depends_is_rejected() -> None:
    wf = load_manifest("workflow")
    wf["spec"]["stages"][3]["depends"] = ["build", "x"]
    assert _messages(wf) == ['spec.stages[3].depends[1]: unknown stage "x"']


def test_duplicate_stage_is_rejected() -> None:
    wf = load_manifest("workflow")
    wf["spec"]["stages"].append({"name": "build"})
    assert _messages(wf) == [
        "spec.stages[5].name: duplicate stage name 'build' (also spec.stages[1])"
    ]


def test_bad_stage_name_in_workflow_is_rejected() -> None:
    wf = load_manifest("workflow")
    wf["spec"]["stages"].append({"name": "Build_2"})
    (message,) = _messages(wf)
    assert message.startswith("spec.stages[5].name: 'Build_2' is not a DNS-1123 label")


def test_artifact_source_must_name_a_known_stage() -> None:
    wf = load_manifest("workflow")
    wf["spec"]["stages"][1]["artifacts"] = [
        {"name": "a", "source": "nowhere/config"},
        {"name": "b", "source": "no-slash"},
    ]
    assert _messages(wf) == [
        'spec.stages[1].artifacts[0].source: unknown stage "nowhere"',
        "spec.stages[1].artifacts[1].source: 'no-slash' is not <stage>/<artifact>",
    ]


def test_stage_with_both_pod_and_delegation_is_rejected() -> None:
    stage = load_manifest("stage-pod")
    stage["spec"]["delegation"] = load_manifest("stage-delegation")["spec"]["delegation"]
    assert _messages(stage) == ["spec: exactly one of pod and delegation must be set, got both"]


def test_stage_with_neither_pod_nor_delegation_is_rejected() -> None:
    stage = load_manifest("stage-pod")
    del stage["spec"]["pod"]
    assert _messages(stage) == ["spec: exactly one of pod and delegation must be set, got none"]


def test_pod_stage_needs_a_container() -> None:
    stage = load_manifest("stage-pod")
    stage["spec"]["pod"]["spec"]["containers"] = []
    assert _messages(stage) == ["spec.pod.spec.containers: at least one container required"]


def test_stage_retry_fields_are_checked() -> None:
    stage = load_manifest("stage-pod")
    stage["spec"]["retryBackoff"] = "soon"
    stage["spec"]["retries"] = -1
    assert [e.path for e in validate_object(stage)] == ["spec.retries"]
    stage["spec"]["retries"] = 1
    (error,) = validate_object(stage)
    assert error.path == "spec.retryBackoff" and "invalid duration 'soon'" in error.message


def test_delegation_timeout_and_url_are_checked() -> None:
    stage = load_manifest("stage-delegation")
    stage["spec"]["delegation"]["timeout"] = "1h:30m"
    stage["spec"]["delegation"]["url"] = "approvals"
    assert [e.path for e in validate_object(stage)] == [
        "spec.delegation.url",
        "spec.delegation.timeout",
    ]


def test_delegation_without_url_is_rejected() -> None:
    stage = load_manifest("stage-delegation")
    del stage["spec"]["delegation"]["url"]
    assert _messages(stage) == ["spec.delegation.url: required"]


@pytest.mark.parametrize("timeout", ["1h:30m", "abc", "-1h"])
def test_bad_run_timeout_is_rejected(timeout: str) -> None:
    run = load_manifest("workflowrun")
    run["spec"]["timeout"] = timeout
    (error,) = validate_object(run)
    assert error.path == "spec.timeout"
    assert timeout in error.message


@pytest.mark.parametrize("name", ["Build", "build_1", "-build", "build-", "a" * 64, "a.b"])
def test_bad_metadata_name_is_rejected(name: str) -> None:
    stage = load_manifest("stage-delegation")
    stage["metadata"]["name"] = name
    (error,) = validate_object(stage)
    assert error.path == "metadata.name"


def test_cluster_scoped_names_may_be_subdomains() -> None:
    cluster = load_manifest("executioncluster")
    cluster["metadata"]["name"] = "worker.beijing"
    assert validate_object(cluster) == []


def test_missing_name_is_allowed_with_generate_name_only() -> None:
    run = load_manifest("workflowrun")
    del run["metadata"]["name"]
    assert _messages(run) == ["metadata.name: required (or metadata.generateName)"]
    run["metadata"]["generateName"] = "devops-demo-ci-"
    assert validate_object(run) == []


def test_run_without_workflow_ref_is_rejected() -> None:
    run = load_manifest("workflowrun")
    del run["spec"]["workflowRef"]
    assert _messages(run) == ["spec.workflowRef.name: required"]


def test_run_volumes_are_checked() -> None:
    run = load_manifest("workflowrun")
    run["spec"]["volumes"] = [
        {"type": "Secret", "mountPath": "/x"},
        {"type": "HostPath", "mountPath": "relative"},
        {"type": "NFS", "mountPath": "/y"},
    ]
    paths = [e.path for e in validate_object(run)]
    assert paths == ["spec.volumes[2].type"]
    run["spec"]["volumes"].pop()
    assert [e.path for e in validate_object(run)] == [
        "spec.volumes[0].objectName",
        "spec.volumes[1].path",
        "spec.volumes[1].mountPath",
    ]


def test_type_errors_name_the_camel_case_path() -> None:
    run = load_manifest("workflowrun")
    run["spec"]["startStages"] = ["prepare", 3]
    run["status"]["stages"]["build"]["attempts"] = -2
    assert [e.path for e in validate_object(run)] == [
        "spec.startStages[1]",
        "status.stages.build.attempts",
    ]


@pytest.mark.parametrize("schedule", ["0 2 * *", "0 2 * * * * *", "61 2 * * *", "x 0 2 * * *"])
def test_bad_cron_schedule_is_rejected(schedule: str) -> None:
    trigger = load_manifest("trigger-cron")
    trigger["spec"]["cron"]["schedule"] = schedule
    assert [e.path for e in validate_object(trigger)] == ["spec.cron.schedule"]


def test_six_field_cron_with_seconds_is_accepted() -> None:
    trigger = load_manifest("trigger-cron")
    trigger["spec"]["cron"]["schedule"] = "30 0 2 * * *"
    assert validate_object(trigger) == []


def test_cron_trigger_checks_timezone_and_needs_cron() -> None:
    trigger = load_manifest("trigger-cron")
    trigger["spec"]["cron"]["timezone"] = "Mars/Olympus"
    assert [e.path for e in validate_object(trigger)] == ["spec.cron.timezone"]
    del trigger["spec"]["cron"]
    assert _messages(trigger) == ["spec.cron: required for a Cron trigger"]


def test_trigger_type_and_scm_repo_are_checked() -> None:
    trigger = load_manifest("trigger-scm")
    del trigger["spec"]["scm"]["repo"]
    assert _messages(trigger) == ["spec.scm.repo: required for an SCM trigger"]
    trigger["spec"]["type"] = "Poll"
    assert [e.path for e in validate_object(trigger)] == ["spec.type"]


def test_trigger_timeout_is_checked() -> None:
    trigger = load_manifest("trigger-scm")
    trigger["spec"]["timeout"] = "30 minutes"
    assert [e.path for e in validate_object(trigger)] == ["spec.timeout"]


def test_integration_needs_the_source_of_its_type() -> None:
    integration = load_manifest("integration-scm")
    integration["spec"]["type"] = "DockerRegistry"
    assert _messages(integration) == ["spec.scm: does not belong to type DockerRegistry",
                                      "spec.dockerRegistry: required for type DockerRegistry"]


def test_execution_cluster_needs_a_way_in() -> None:
    cluster = load_manifest("executioncluster")
    cluster["spec"]["credential"] = {}
    assert _messages(cluster) == ["spec.credential: server or kubeConfig required"]
    cluster["metadata"]["name"] = "cyclone-control-cluster"
    assert validate_object(cluster) == []


def test_wrong_api_version_or_kind() -> None:
    assert _messages({"apiVersion": "v1", "kind": "Pod"}) == [
        "apiVersion: must be cyclone.dev/v1alpha1"
    ]
    assert _messages({"apiVersion": "cyclone.dev/v1alpha1", "kind": "Pipeline"}) == [
        "kind: unknown Cyclone kind 'Pipeline'"
    ]


def test_ensure_valid_raises_with_every_error() -> None:
    wf = load_manifest("workflow")
    wf["metadata"]["name"] = "Bad"
    wf["spec"]["stages"][1]["depends"] = ["ghost"]
    with pytest.raises(ValidationFailed) as caught:
        ensure_valid(wf)
    assert [e.path for e in caught.value.errors] == ["metadata.name", "spec.stages[1].depends[0]"]
    assert 'spec.stages[1].depends[0]: unknown stage "ghost"' in str(caught.value)
    assert isinstance(caught.value.errors[0], FieldError)


def test_tenant_name_must_leave_room_for_its_namespace() -> None:
    tenant = load_manifest("tenant")
    tenant["metadata"]["name"] = "t" * 56
    assert _messages(tenant) == [
        f"metadata.name: at most 55 characters (namespace 'cyclone-{'t' * 56}')"
    ]
    tenant["metadata"]["name"] = "t" * 55
    assert validate_object(tenant) == []
