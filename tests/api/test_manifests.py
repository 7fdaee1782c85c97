"""Original Cyclone manifests load into the models, validate, and dump back unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cyclone.api import (
    ContainerGroup,
    Integration,
    IntegrationType,
    Phase,
    PullPolicy,
    Stage,
    Tenant,
    TriggerType,
    Workflow,
    WorkflowRun,
    WorkflowTrigger,
    load_object,
    validate_object,
)
from cyclone.api.meta import CycloneObject

from .manifests import load_manifest, manifest_paths

SERVER_SHAPES = {"Tenant": Tenant, "Integration": Integration}


def _load_any(data: dict):
    if data["kind"] in SERVER_SHAPES:
        return SERVER_SHAPES[data["kind"]].from_object(data)
    return load_object(data)


def test_every_kind_has_a_sample_manifest() -> None:
    kinds = {yaml.safe_load(path.read_text())["kind"] for path in manifest_paths()}
    assert kinds == {
        "ExecutionCluster", "Project", "Resource", "Stage", "Workflow", "WorkflowRun",
        "WorkflowTrigger", "Tenant", "Integration",
    }


@pytest.mark.parametrize("path", manifest_paths(), ids=lambda p: p.stem)
def test_sample_manifest_round_trips_exactly(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    model = _load_any(data)
    assert model.to_object() == data


@pytest.mark.parametrize("path", manifest_paths(), ids=lambda p: p.stem)
def test_sample_manifest_is_valid(path: Path) -> None:
    assert validate_object(yaml.safe_load(path.read_text())) == []


def test_cyclone_object_dump_puts_api_version_and_kind_first() -> None:
    run = load_object(load_manifest("workflowrun"))
    assert isinstance(run, CycloneObject)
    assert list(run.to_object())[:2] == ["apiVersion", "kind"]


def test_pod_stage_fields_are_read_by_their_camel_case_names() -> None:
    stage = Stage.from_object(load_manifest("stage-pod"))
    assert stage.spec.pod is not None
    assert [r.path for r in stage.spec.pod.inputs.resources] == ["/workspace/src"]
    assert stage.spec.pod.inputs.arguments[2].required is True
    assert stage.spec.pod.inputs.artifacts[0].source == "prepare/config"
    assert stage.spec.pod.outputs.artifacts[0].name == "binary"
    assert stage.spec.retries == 2
    assert stage.spec.retry_backoff == "10s"
    assert stage.spec.delegation is None


def test_pod_spec_is_kept_whole_including_fields_cyclone_does_not_model() -> None:
    data = load_manifest("stage-pod")
    stage = Stage.from_object(data)
    assert stage.spec.pod is not None
    assert stage.spec.pod.spec == data["spec"]["pod"]["spec"]
    assert stage.spec.pod.spec["tolerations"][0]["key"] == "dedicated"


def test_workflow_stage_items_and_notification() -> None:
    workflow = Workflow.from_object(load_manifest("workflow"))
    lint = workflow.stage("lint")
    assert lint is not None and lint.trivial is True
    assert workflow.stage("approve").depends == ["build", "lint"]  # type: ignore[union-attr]
    assert workflow.spec.notification is not None
    assert workflow.spec.notification.policy == "Failure"
    assert [r.type for r in workflow.spec.notification.receivers] == ["Email", "Slack", "Webhook"]
    assert workflow.spec.global_variables[0].name == "IMAGE_TAG"
    assert workflow.spec.resources == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": 1, "memory": "1Gi"},
    }


def test_workflow_run_spec_and_status_fields() -> None:
    run = WorkflowRun.from_object(load_manifest("workflowrun"))
    assert run.spec.workflow_ref is not None and run.spec.workflow_ref.name == "devops-demo-ci"
    assert run.spec.execution_context is not None
    assert run.spec.execution_context.pvc == "cyclone-pvc-devops"
    assert run.spec.volumes[0].container_group == ContainerGroup.SIDECAR
    assert run.spec.retry_of == "devops-demo-ci-a1b2c"
    assert run.spec.paused is False
    status = run.status
    assert status is not None
    assert status.overall.phase is Phase.RUNNING
    assert status.stages["prepare"].status.phase is Phase.SUCCEEDED
    assert status.stages["prepare"].outputs[0].key == "LastCommitID"
    assert status.stages["prepare"].events[0].last_timestamp == "2026-01-02T03:04:06Z"
    assert status.stages["approve"].delegation is not None
    assert status.stages["approve"].delegation.deadline == "2026-01-02T05:04:10Z"
    assert status.stages["build"].attempts == 1
    assert status.deadline == "2026-01-02T04:34:05Z"
    assert status.notifications["https://ci.example.com/hooks/cyclone"].result == "Succeeded"


def test_trigger_inlines_the_workflow_run_spec() -> None:
    cron = WorkflowTrigger.from_object(load_manifest("trigger-cron"))
    assert cron.spec.type is TriggerType.CRON
    assert cron.spec.cron is not None and cron.spec.cron.timezone == "Asia/Shanghai"
    assert cron.spec.concurrency_policy == "Forbid"
    assert cron.spec.starting_deadline_seconds == 300
    assert cron.spec.timeout == "2h"
    assert cron.spec.workflow_ref is not None and cron.spec.workflow_ref.name == "devops-demo-ci"
    assert cron.status is not None and cron.status.count == 42
    scm = WorkflowTrigger.from_object(load_manifest("trigger-scm"))
    assert scm.spec.scm is not None
    assert scm.spec.scm.post_commit is not None
    assert scm.spec.scm.post_commit.root_url == "https://svn.example.com/repos"
    assert scm.spec.scm.pull_request_comment is not None
    assert scm.spec.scm.pull_request_comment.comments == ["/rerun", "/test all"]


def test_resource_persistent_and_binding() -> None:
    resource = load_object(load_manifest("resource-git"))
    assert resource.spec.persistent.pull_policy is PullPolicy.IF_NOT_EXIST  # type: ignore[attr-defined]
    template = load_object(load_manifest("resource-type-git"))
    assert template.spec.bind.param_bindings["SCM_URL"] == "scm.server"  # type: ignore[attr-defined]


def test_integration_source_sits_beside_its_type() -> None:
    integration = Integration.from_object(load_manifest("integration-cluster"))
    assert integration.spec.type is IntegrationType.CLUSTER
    source = integration.spec.source()
    assert source is integration.spec.cluster
    assert integration.spec.cluster is not None
    assert integration.spec.cluster.is_worker_cluster is True
