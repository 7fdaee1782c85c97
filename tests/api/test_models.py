"""How models dump: exact round trips, unknown fields kept, changes written out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cyclone.api import (
    ObjectMeta,
    Phase,
    Stage,
    StageStatus,
    Status,
    WorkflowRun,
    WorkflowRunSpec,
    WorkflowRunStatus,
    load_object,
    model_for_kind,
)
from cyclone.api.registry import UnknownKind

from .manifests import load_manifest


def test_unknown_fields_survive_at_every_level() -> None:
    data = load_manifest("workflowrun")
    data["spec"]["futureField"] = {"a": 1}
    data["status"]["stages"]["prepare"]["futureStageField"] = [1, 2]
    data["topLevelExtra"] = "kept"
    assert WorkflowRun.from_object(data).to_object() == data


def test_fields_absent_from_the_manifest_are_not_written_back() -> None:
    data = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Stage", "metadata": {"name": "s"},
            "spec": {"delegation": {"url": "http://x"}}}
    dumped = Stage.from_object(data).to_object()
    assert dumped == data
    assert "retries" not in dumped["spec"]


def test_fields_given_with_default_values_are_written_back() -> None:
    data = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Stage", "metadata": {"name": "s"},
            "spec": {"delegation": {"url": "http://x"}, "retries": 0}}
    assert Stage.from_object(data).to_object()["spec"]["retries"] == 0


def test_containers_changed_in_place_are_written_out() -> None:
    run = WorkflowRun.from_object(load_manifest("workflowrun"))
    assert run.status is not None
    run.status.stages["deploy"] = StageStatus(status=Status(phase=Phase.PENDING))
    run.spec.end_stages.append("notify")
    dumped = run.to_object()
    assert dumped["status"]["stages"]["deploy"] == {"status": {"phase": "Pending"}}
    assert dumped["spec"]["endStages"] == ["deploy", "notify"]


def test_assigned_fields_are_written_out() -> None:
    run = WorkflowRun(metadata=ObjectMeta(name="r"), spec=WorkflowRunSpec())
    run.status = WorkflowRunStatus()
    run.status.overall = Status(phase=Phase.FAILED, reason="Timeout")
    run.status.cleaned = True
    assert run.to_object() == {
        "apiVersion": "cyclone.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": "r"},
        "spec": {},
        "status": {"overall": {"phase": "Failed", "reason": "Timeout"}, "cleaned": True},
    }


def test_status_phase_is_always_written() -> None:
    assert Status().to_object() == {"phase": "Pending"}


def test_models_are_built_by_python_names() -> None:
    spec = WorkflowRunSpec(start_stages=["a"], retry_of="old")
    assert spec.to_object() == {"startStages": ["a"], "retryOf": "old"}


def test_phase_terminal() -> None:
    assert {p for p in Phase if p.terminal} == {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED}
    assert Phase.RUNNING == "Running"


def test_unknown_phase_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Status.from_object({"phase": "Completed"})


def test_load_object_dispatches_on_kind() -> None:
    assert type(load_object(load_manifest("workflow"))).__name__ == "Workflow"
    assert model_for_kind("ExecutionCluster").NAMESPACED is False
    with pytest.raises(UnknownKind):
        load_object({"apiVersion": "v1", "kind": "Pod"})
    with pytest.raises(UnknownKind):
        model_for_kind("Pipeline")


def test_kind_defaults_to_the_class_kind() -> None:
    assert WorkflowRun().kind == "WorkflowRun"
    assert WorkflowRun().to_object()["kind"] == "WorkflowRun"
