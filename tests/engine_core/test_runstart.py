"""What a new run must be before it is written (`cyclone.engine.core.runstart`)."""

from __future__ import annotations

import copy
import json

from cyclone.api import keys
from cyclone.engine.core.runstart import (
    EVENT_MESSAGE_LIMIT,
    REASON_RUN_REFUSED,
    field_refusal,
    new_run,
    refusal_event,
    stage_specs_record,
    violations_refusal,
)
from cyclone.engine.core.tenancy import Violation

NAMESPACE = "cyclone-devops"
CONTEXT = {"cluster": "c1", "namespace": "cyclone-devops-worker", "pvc": "pvc-1"}


def _run(**spec) -> dict:
    return {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
            "metadata": {"name": "r1", "namespace": NAMESPACE},
            "spec": {"workflowRef": {"kind": "Workflow", "name": "wf"}, **spec}}


def test_a_new_run_starts_neither_stopped_nor_paused_and_runs_in_the_context_given():
    retried = _run(stopped=True, paused=True, executionContext={"cluster": "old"})
    kept = copy.deepcopy(retried)
    run = new_run(retried, CONTEXT)
    assert "stopped" not in run["spec"] and "paused" not in run["spec"]
    assert run["spec"]["executionContext"] == CONTEXT
    assert run["spec"]["workflowRef"] == {"kind": "Workflow", "name": "wf"}
    assert retried == kept


def test_field_errors_name_the_first_five_fields_and_count_the_rest():
    assert field_refusal(_run()) is None
    refusal = field_refusal(_run(globalVariables=list(range(7))))
    assert refusal is not None and not refusal.forbidden
    assert refusal.message.startswith("invalid WorkflowRun: spec.globalVariables[0]: ")
    assert "spec.globalVariables[4]" in refusal.message
    assert "spec.globalVariables[5]" not in refusal.message
    assert refusal.message.endswith(" (and 2 more)")
    assert [c["field"] for c in refusal.causes] == [
        f"spec.globalVariables[{i}]" for i in range(7)]


def test_reaching_what_another_tenant_owns_is_forbidden_asking_for_a_feature_is_invalid():
    access = Violation("spec.executionContext.cluster", "not opened")
    feature = Violation("spec.volumes[0]", "hostPath is not allowed", feature="hostPath")
    assert violations_refusal("workflowrun 'r1'", []) is None
    both = violations_refusal("workflowrun 'r1'", [feature, access])
    assert both is not None and both.forbidden
    assert both.message == ("workflowrun 'r1' reaches outside its tenant: "
                            "spec.executionContext.cluster: not opened")
    assert [c["field"] for c in both.causes] == ["spec.volumes[0]",
                                                 "spec.executionContext.cluster"]
    only_feature = violations_refusal("workflowrun 'r1'", [feature])
    assert only_feature is not None and not only_feature.forbidden


def test_a_refusal_is_told_on_the_trigger_once_per_run_and_trigger():
    trigger = {"apiVersion": keys.API_VERSION, "kind": "WorkflowTrigger",
               "metadata": {"name": "nightly", "namespace": NAMESPACE, "uid": "u-1"}}
    event = refusal_event(trigger, "nightly-100", "x" * 2000, "2026-01-01T00:00:00Z")
    assert event["metadata"] == {"name": "nightly-100.u-1", "namespace": NAMESPACE}
    assert event["involvedObject"] == {"apiVersion": keys.API_VERSION,
                                       "kind": "WorkflowTrigger", "name": "nightly",
                                       "namespace": NAMESPACE, "uid": "u-1"}
    assert (event["reason"], event["type"]) == (REASON_RUN_REFUSED, "Warning")
    assert event["message"].startswith("run nightly-100 not created: xxx")
    assert len(event["message"]) == EVENT_MESSAGE_LIMIT
    again = refusal_event({**trigger, "metadata": {**trigger["metadata"], "uid": "u-2"}},
                          "nightly-100", "x", "2026-01-01T00:00:00Z")
    assert again["metadata"]["name"] == "nightly-100.u-2"


def _stage(name: str, command: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"pod": {"spec": {"containers": [
        {"name": "main", "image": "alpine", "command": ["sh", "-c", command]}]}}}}


WORKFLOW = {"spec": {"stages": [{"name": "build"}, {"name": "test", "depends": ["build"]}]}}


def test_a_run_records_the_specs_of_its_workflows_stages_only() -> None:
    record = json.loads(stage_specs_record(WORKFLOW, [
        _stage("build", "make"), _stage("test", "make test"), _stage("other", "x")]))
    assert record == {"build": _stage("build", "make")["spec"],
                      "test": _stage("test", "make test")["spec"]}


def test_a_record_past_its_limit_keeps_a_digest_per_stage() -> None:
    stages = [_stage("build", "make " + "x" * 500), _stage("test", "make test")]
    whole = stage_specs_record(WORKFLOW, stages)
    record = json.loads(stage_specs_record(WORKFLOW, stages, limit=200))
    assert len(whole) > 200
    assert set(record) == {"build", "test"}
    assert all(value.startswith("sha256:") and len(value) == 71 for value in record.values())
    changed = json.loads(stage_specs_record(
        WORKFLOW, [_stage("build", "make " + "y" * 500), _stage("test", "make test")],
        limit=200))
    assert changed["build"] != record["build"] and changed["test"] == record["test"]


def test_a_credential_typed_into_a_stage_is_masked_in_the_record() -> None:
    from cyclone.engine.core.masking import MASK, Masker

    stages = [_stage("build", "curl -H 'token: scm-token-value-123' x"), _stage("test", "t")]
    record = json.loads(stage_specs_record(WORKFLOW, stages, Masker(["scm-token-value-123"])))
    command = record["build"]["pod"]["spec"]["containers"][0]["command"][2]
    assert command == f"curl -H 'token: {MASK}' x"
