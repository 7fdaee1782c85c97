"""How a run that fails says so: stages it never began are Cancelled with the reason, the
run's message tells failed stages from cancelled ones, and objects the API would refuse
(written straight to the cluster) fail the run naming the field."""

from __future__ import annotations

from cyclone.engine.core.progress import end_run, failure_summary, invalid_objects, settle_overall
from cyclone.engine.core.runstate import RunState

from .fixtures import NOW

API = "cyclone.dev/v1alpha1"


def state_of(stages: dict[str, dict]) -> RunState:
    return RunState({"metadata": {"name": "r", "namespace": "ns"}, "spec": {},
                     "status": {"stages": stages}}, NOW)


def entry(phase: str, message: str | None = None, **fields: object) -> dict:
    status: dict = {"phase": phase}
    if message:
        status["message"] = message
    return {"status": status, **fields}


def test_stages_a_run_never_began_are_cancelled_with_its_reason():
    state = state_of({})
    end_run(state, "Failed", "StageNotFound", "stage(s) biuld of workflow ci not found",
            scope=["biuld", "test"])
    assert {n: (e["status"]["phase"], e["status"]["reason"], e["status"]["message"])
            for n, e in state.stages.items()} == {
        "biuld": ("Cancelled", "StageNotFound",
                  "not started: stage(s) biuld of workflow ci not found"),
        "test": ("Cancelled", "StageNotFound",
                 "not started: stage(s) biuld of workflow ci not found")}
    assert state.overall["phase"] == "Failed"


def test_the_scope_leaves_finished_and_started_stages_to_their_own_fate():
    state = state_of({"done": entry("Succeeded"), "busy": entry("Running")})
    end_run(state, "Failed", "Timeout", "the run exceeded its timeout",
            scope=["done", "busy", "later"])
    assert {n: state.stage_phase(n) for n in state.stages} == {
        "done": "Succeeded", "busy": "Failed", "later": "Cancelled"}


def test_the_run_message_gives_each_failure_then_counts_the_cancelled_stages():
    state = state_of({"broken": entry("Failed", "exit code 2"), "t": entry("Failed", trivial=True),
                      "a": entry("Cancelled"), "b": entry("Cancelled"),
                      "ok": entry("Succeeded")})
    settle_overall(state, set(), paused=False)
    assert state.overall["phase"] == "Failed"
    assert state.overall["reason"] == "StageFailed"
    assert state.overall["message"] == "stage broken failed: exit code 2; 2 stages cancelled: a, b"


def test_a_failure_without_a_message_and_one_cancelled_stage_read_naturally():
    assert failure_summary({"x": entry("Failed"), "y": entry("Cancelled")}, set()) == (
        "stage x failed; 1 stage cancelled: y")
    assert failure_summary({"x": entry("Succeeded"), "y": entry("Failed")}, {"y"}) is None


def test_a_long_stage_message_is_cut_in_the_run_message():
    summary = failure_summary({"x": entry("Failed", "e" * 500)}, set())
    assert summary is not None and len(summary) < 230 and summary.endswith("…")


def test_objects_the_api_would_refuse_fail_the_run_naming_object_and_field():
    workflow = {"apiVersion": API, "kind": "Workflow", "metadata": {"name": "ci"},
                "spec": {"stages": [{"name": "build"}]}}
    stage = {"apiVersion": API, "kind": "Stage", "metadata": {"name": "build"},
             "spec": {"pod": {"spec": {"containers": [{"image": "alpine", "comand": ["x"]}]}}}}
    assert invalid_objects(workflow, {"build": stage}) == (
        "InvalidWorkflowRun",
        "stage build: spec.pod.spec.containers[0].comand: unknown field 'comand' "
        "(did you mean 'command'?)")
    fixed = {**stage, "spec": {"pod": {"spec": {"containers": [{"image": "alpine"}]}}}}
    assert invalid_objects(workflow, {"build": fixed}) is None


def test_a_definition_with_countless_problems_fails_the_run_with_a_bounded_message() -> None:
    from cyclone.engine.core.progress import invalid_objects

    containers = [{"name": f"c{i}", "image": "x", "comand": ["sh"], "x" * 5000: 1}
                  for i in range(200)]
    stage = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Stage",
             "metadata": {"name": "s", "namespace": "cyclone-t"},
             "spec": {"pod": {"spec": {"containers": containers}}}}
    workflow = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Workflow",
                "metadata": {"name": "w", "namespace": "cyclone-t"},
                "spec": {"stages": [{"name": "s"}]}}
    failure = invalid_objects(workflow, {"s": stage})
    assert failure is not None
    reason, message = failure
    assert reason == "InvalidWorkflowRun" and "comand" in message
    assert len(message) < 2000 and message.endswith("more)")
