"""The run-level rules of a reconcile: cluster availability, which stages start, how a run
ends and what its overall status says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cyclone.engine.core.dag import DagStage
from cyclone.engine.core.progress import (
    CLUSTER_CONNECT_RECHECK_SECONDS,
    ClusterVerdict,
    cancel_blocked,
    cluster_verdict,
    end_run,
    enter_scope,
    invalid_references,
    mark_admitted,
    mark_queued,
    plan_starts,
    record_stage_shapes,
    requeue_after,
    scope_failure,
    settle_overall,
    stages_missing,
    stages_to_observe,
    timed_out,
    workflow_missing,
)
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.timefmt import rfc3339

from .fixtures import NOW

SECOND = timedelta(seconds=1)


def state_of(stages: dict[str, dict] | None = None, overall: dict | None = None) -> RunState:
    status: dict = {"stages": stages or {}}
    if overall:
        status["overall"] = overall
    return RunState({"metadata": {"name": "r", "namespace": "ns"}, "spec": {},
                     "status": status}, NOW)


def entry(phase: str, reason: str | None = None, **fields: object) -> dict:
    status = {"phase": phase, "lastTransitionTime": rfc3339(NOW - 60 * SECOND)}
    if reason:
        status["reason"] = reason
    return {"status": status, **fields}


def pod_stage() -> dict:
    return {"spec": {"pod": {"spec": {"containers": []}}}}


# the run's definition

def test_a_missing_workflow_fails_the_run_naming_it():
    assert workflow_missing("ns", "wf") == ("WorkflowNotFound", "workflow 'wf' not found in ns")


def test_scope_problems_fail_the_run_as_one_message():
    assert scope_failure([("startStages", "no stage x"), ("endStages", "no stage y")]) == (
        "InvalidWorkflowRun", "startStages: no stage x; endStages: no stage y")
    assert scope_failure([]) is None


def test_missing_stages_fail_the_run_naming_each():
    assert stages_missing("wf", {"a": {}, "b": None, "c": None}) == (
        "StageNotFound", "stage(s) b, c of workflow wf not found")
    assert stages_missing("wf", {"a": {}}) is None


def test_output_references_naming_nothing_fail_the_run_as_one_message():
    assert invalid_references(["a: x", "b: y"]) == ("InvalidWorkflowRun", "a: x; b: y")
    assert invalid_references([]) is None


def test_a_run_times_out_at_its_stored_deadline_not_before():
    state = state_of()
    assert timed_out(state) is None
    state.status["deadline"] = rfc3339(NOW + SECOND)
    assert timed_out(state) is None
    state.status["deadline"] = rfc3339(NOW)
    assert timed_out(state) == ("Timeout", "the run exceeded its timeout")


def test_blocked_stages_are_cancelled_for_an_upstream_failure():
    state = state_of({"b": entry("Pending"), "c": entry("Succeeded")})
    cancel_blocked(state, ["b", "c"])
    assert state.stages["b"]["status"]["phase"] == "Cancelled"
    assert state.stages["b"]["status"]["reason"] == "UpstreamFailed"
    assert state.stage_phase("c") == "Succeeded"


def test_only_running_stages_with_a_pod_are_observed():
    state = state_of({"a": entry("Running", pod={"name": "p"}), "b": entry("Running"),
                      "c": entry("Succeeded", pod={"name": "q"}), "d": entry("Pending")})
    assert stages_to_observe(state) == ["a"]


# cluster availability

def test_a_cluster_being_connected_is_looked_at_again_soon():
    assert cluster_verdict("c", connected=False, problem="", unreachable_limit=30) == \
        ClusterVerdict(recheck=CLUSTER_CONNECT_RECHECK_SECONDS)


def test_a_cluster_nothing_describes_is_not_registered():
    verdict = cluster_verdict("c", connected=False, problem=None, unreachable_limit=30)
    assert verdict.failure == (
        "ExecutionClusterNotFound", "execution cluster 'c' is not registered")


def test_a_cluster_that_cannot_be_used_fails_the_run_with_why():
    verdict = cluster_verdict("c", connected=False, problem="bad token", unreachable_limit=30)
    assert verdict.failure == ("ExecutionClusterUnavailable", "execution cluster 'c': bad token")


def test_a_connected_cluster_that_answers_is_usable():
    assert cluster_verdict("c", connected=True, unreachable_limit=30).usable


@pytest.mark.parametrize(("failing_for", "recheck"), [(1.0, 1.0), (29.5, 0.55), (29.99, 0.06)])
def test_an_unreachable_cluster_is_looked_at_again_until_its_limit(failing_for, recheck):
    verdict = cluster_verdict("c", connected=True, failing_for=failing_for, error="refused",
                              unreachable_limit=30)
    assert verdict.failure is None
    assert verdict.recheck == pytest.approx(recheck)
    assert not verdict.usable


def test_a_cluster_unreachable_up_to_its_limit_fails_the_run():
    verdict = cluster_verdict("c", connected=True, failing_for=30.0, error="refused",
                              unreachable_limit=30)
    assert verdict.failure == (
        "ExecutionClusterUnavailable", "execution cluster 'c' has not answered for 30s: refused")


# admission

def test_a_queued_run_is_pending_and_marked_queued():
    state = state_of()
    mark_queued(state)
    assert state.status["queued"] is True
    assert state.overall["phase"] == "Pending"
    assert state.overall["reason"] == "Queued"


def test_an_admitted_run_is_running_with_its_deadline_and_no_longer_queued():
    state = state_of()
    mark_queued(state)
    mark_admitted(state, NOW + timedelta(minutes=5))
    assert "queued" not in state.status
    assert state.status["deadline"] == rfc3339(NOW + timedelta(minutes=5))
    assert state.overall["phase"] == "Running"
    assert "reason" not in state.overall


# stage entries

def test_every_stage_in_scope_gets_a_pending_entry_and_others_none():
    state = state_of({"a": entry("Succeeded")})
    enter_scope(state, ["a", "b"])
    assert state.stage_phase("a") == "Succeeded"
    assert state.stage_phase("b") == "Pending"
    assert set(state.stages) == {"a", "b"}


def test_entries_carry_their_depends_and_trivial_as_the_workflow_has_them_now():
    state = state_of({"b": entry("Pending", depends=["x"], trivial=False)})
    record_stage_shapes(state, [DagStage("a"), DagStage("b", ("a",), trivial=True)])
    assert state.stages["b"]["depends"] == ["a"]
    assert state.stages["b"]["trivial"] is True
    assert "a" not in state.stages


def test_a_stage_made_trivial_is_marked_so_though_its_depends_are_the_same():
    state = state_of({"b": entry("Pending", depends=["a"], trivial=False)})
    record_stage_shapes(state, [DagStage("a"), DagStage("b", ("a",), trivial=True)])
    assert state.stages["b"]["trivial"] is True


def test_unchanged_shapes_leave_the_status_unchanged():
    state = state_of({"b": entry("Pending", depends=["a"], trivial=False)})
    record_stage_shapes(state, [DagStage("a"), DagStage("b", ("a",))])
    assert not state.changed


# which stages start

def test_delegations_pods_and_waits_are_told_apart():
    state = state_of({
        "retrying": entry("Pending", "RetryAfterFailure", attempts=1),
        "due": entry("Pending", "RetryAfterFailure", attempts=1),
        "refused": entry("Pending", "RetryOnExceededQuotaTimeout", quotaRefusals=2,
                         lastQuotaRefusalTime=rfc3339(NOW - SECOND)),
    })
    objs = {
        "approve": {"spec": {"delegation": {"url": "http://x"}}},
        "new": pod_stage(),
        "retrying": {"spec": {"retries": 1, "retryBackoff": "2m", **pod_stage()["spec"]}},
        "due": {"spec": {"retries": 1, "retryBackoff": "30s", **pod_stage()["spec"]}},
        "refused": pod_stage(),
    }
    plan = plan_starts(state, list(objs), objs, SECOND, 4 * SECOND)
    assert plan.delegations == ["approve"]
    assert plan.pods == ["new", "due"]
    assert sorted(plan.later) == [NOW + SECOND, NOW + timedelta(minutes=1)]


# ending a run

def test_ending_a_run_fails_what_started_cancels_the_rest_and_dooms_running_pods():
    pod = {"name": "p-a", "namespace": "ns"}
    state = state_of({
        "a": entry("Running", pod=pod),
        "w": entry("Waiting"),
        "p": entry("Pending"),
        "done": entry("Succeeded", pod={"name": "p-done", "namespace": "ns"}),
    })
    doomed = end_run(state, "Failed", "Timeout", "the run exceeded its timeout")
    assert doomed == [pod]
    assert {n: (state.stage_phase(n), state.stages[n]["status"].get("reason"))
            for n in state.stages} == {
        "a": ("Failed", "Timeout"), "w": ("Failed", "Timeout"), "p": ("Cancelled", "Timeout"),
        "done": ("Succeeded", None)}
    assert state.overall["phase"] == "Failed"
    assert state.overall["message"] == "the run exceeded its timeout"
    assert state.status["completionTime"] == rfc3339(NOW)


def test_a_stopped_run_cancels_started_stages_too():
    state = state_of({"a": entry("Running"), "b": entry("Pending")})
    end_run(state, "Cancelled", "ManuallyStop", "stopped by a user")
    assert state.stage_phase("a") == "Cancelled"
    assert state.stage_phase("b") == "Cancelled"


# overall status

def test_a_failed_run_names_its_failed_and_cancelled_non_trivial_stages():
    state = state_of({"a": entry("Failed"), "t": entry("Failed", trivial=True),
                      "u": entry("Failed"), "b": entry("Cancelled"), "s": entry("Succeeded")})
    settle_overall(state, {"u"}, paused=False)
    assert state.overall["phase"] == "Failed"
    assert state.overall["reason"] == "StageFailed"
    assert state.overall["message"] == "stage a failed; 1 stage cancelled: b"


def test_a_succeeded_run_has_no_reason():
    state = state_of({"a": entry("Succeeded"), "t": entry("Failed", trivial=True)})
    settle_overall(state, set(), paused=False)
    assert state.overall["phase"] == "Succeeded"
    assert "reason" not in state.overall


def test_a_paused_run_says_so_and_a_resumed_one_says_it_was_resumed():
    state = state_of({"a": entry("Pending")}, overall=entry("Running")["status"])
    settle_overall(state, set(), paused=True)
    assert (state.overall["phase"], state.overall["reason"]) == ("Running", "ManuallyPause")
    settle_overall(state, set(), paused=False)
    assert (state.overall["phase"], state.overall["reason"]) == ("Running", "ManuallyResume")
    settle_overall(state, set(), paused=False)
    assert state.overall["reason"] == "ManuallyResume"


def test_a_run_never_paused_goes_on_without_a_reason():
    state = state_of({"a": entry("Running")}, overall={"phase": "Running", "reason": "Other"})
    settle_overall(state, set(), paused=False)
    assert "reason" not in state.overall


# requeue

def test_the_next_look_is_just_after_the_earliest_wakeup():
    assert requeue_after(NOW, [NOW + 10 * SECOND, NOW + 3 * SECOND]) == pytest.approx(3.05)
    assert requeue_after(NOW, [NOW - SECOND]) == pytest.approx(0.05)
    assert requeue_after(NOW, []) is None
