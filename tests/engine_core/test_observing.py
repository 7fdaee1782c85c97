"""What a stage's pod says, folded into the stage status: success, failure, retries, and
delegation deadlines."""

from __future__ import annotations

from datetime import timedelta

from cyclone.engine.core.masking import Masker
from cyclone.engine.core.observing import (
    RetryPolicy,
    expire_delegations,
    fail_or_retry,
    has_termination_messages,
    merge_events,
    observe_pod,
    pod_still_running,
    retry_not_before,
    retry_policy,
)
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.timefmt import rfc3339

from .fixtures import NOW

SECOND = timedelta(seconds=1)
NO_RETRY = RetryPolicy(0, None)


def state_of(stages: dict[str, dict]) -> RunState:
    return RunState({"metadata": {"name": "r", "namespace": "ns"}, "spec": {},
                     "status": {"stages": stages}}, NOW)


def running(attempts: int = 1) -> dict:
    return {"status": {"phase": "Running", "lastTransitionTime": rfc3339(NOW - 60 * SECOND)},
            "pod": {"name": "p", "namespace": "ns"}, "attempts": attempts}


def pod(phase: str, message: str | None = None) -> dict:
    terminated = {"exitCode": 0 if phase == "Succeeded" else 1}
    if message:
        terminated["message"] = message
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "main"}]},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "main", "state": {"terminated": terminated}}]}}


def test_a_stage_policy_reads_retries_and_backoff_and_ignores_an_unreadable_backoff():
    assert retry_policy({"spec": {"retries": 2, "retryBackoff": "30s"}}) == RetryPolicy(
        2, 30 * SECOND)
    assert retry_policy({"spec": {"retries": 1, "retryBackoff": "soon"}}) == RetryPolicy(1, None)
    assert retry_policy(None) == RetryPolicy(0, None)


def test_a_succeeded_pod_succeeds_the_stage_with_its_outputs_masked():
    state = state_of({"a": running()})
    observe_pod(state, "a", pod("Succeeded", "token:s3cret"),
                NO_RETRY, masker=Masker(["s3cret"]))
    assert state.stage_phase("a") == "Succeeded"
    [output] = state.stages["a"]["outputs"]
    assert output["key"] == "token"
    assert "s3cret" not in output["value"]


def test_a_pending_pod_keeps_the_stage_running():
    state = state_of({"a": running()})
    observe_pod(state, "a", {"metadata": {"name": "p"}, "status": {"phase": "Pending"}},
                NO_RETRY)
    assert state.stages["a"]["status"]["phase"] == "Running"
    assert state.stages["a"]["status"]["reason"] == "PodPending"


def test_a_failed_pod_without_retries_left_fails_the_stage():
    state = state_of({"a": running(attempts=2)})
    observe_pod(state, "a", pod("Failed"), RetryPolicy(1, None))
    assert state.stage_phase("a") == "Failed"
    assert state.stages["a"]["status"]["reason"] == "PodFailed"


def test_a_failed_pod_with_a_retry_left_puts_the_stage_back_to_pending():
    state = state_of({"a": running()})
    observe_pod(state, "a", pod("Failed"), RetryPolicy(1, None))
    status = state.stages["a"]["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "RetryAfterFailure")
    assert status["message"].startswith("attempt 1 failed (PodFailed: ")
    assert status["message"].endswith("; attempt 2 follows")


def test_a_vanished_pod_is_a_failed_attempt():
    state = state_of({"a": running()})
    observe_pod(state, "a", None, NO_RETRY)
    assert state.stages["a"]["status"]["reason"] == "PodDeleted"
    assert state.stages["a"]["status"]["message"] == 'pod "p" was deleted'


def test_fail_or_retry_counts_a_stage_without_attempts_as_its_first():
    state = state_of({"a": {"status": {"phase": "Running"}}})
    fail_or_retry(state, "a", "PodFailed", "x", RetryPolicy(1, None))
    assert state.stages["a"]["status"]["reason"] == "RetryAfterFailure"


def test_a_retry_waits_its_doubling_backoff_from_the_failure():
    failed_at = NOW - 5 * SECOND
    state = state_of({"a": {"attempts": 2, "status": {
        "phase": "Pending", "reason": "RetryAfterFailure",
        "lastTransitionTime": rfc3339(failed_at)}}})
    assert retry_not_before(state, "a", RetryPolicy(3, 10 * SECOND)) == failed_at + 20 * SECOND


def test_only_a_stage_waiting_for_a_retry_has_a_retry_time():
    state = state_of({"a": {"attempts": 1, "status": {"phase": "Pending"}},
                      "b": {"attempts": 1, "status": {"phase": "Running"}}})
    assert retry_not_before(state, "a", RetryPolicy(3, SECOND)) is None
    assert retry_not_before(state, "b", RetryPolicy(3, SECOND)) is None


def test_delegations_past_their_deadline_fail_and_the_earliest_other_is_returned():
    def waiting(deadline) -> dict:
        return {"status": {"phase": "Waiting"}, "delegation": {"deadline": rfc3339(deadline)}}
    state = state_of({"late": waiting(NOW), "soon": waiting(NOW + 5 * SECOND),
                      "later": waiting(NOW + 50 * SECOND),
                      "done": {"status": {"phase": "Succeeded"},
                               "delegation": {"deadline": rfc3339(NOW - SECOND)}}})
    assert expire_delegations(state) == NOW + 5 * SECOND
    assert state.stages["late"]["status"]["reason"] == "Timeout"
    assert state.stage_phase("late") == "Failed"
    assert state.stage_phase("done") == "Succeeded"
    assert state.stage_phase("soon") == "Waiting"


def test_events_are_merged_one_per_name_and_reason_newest_kept():
    old = [{"name": "e", "reason": "FailedMount", "count": 1},
           {"name": "f", "reason": "BackOff", "count": 1}]
    new = [{"name": "e", "reason": "FailedMount", "count": 3}]
    assert merge_events(old, new) == [{"name": "e", "reason": "FailedMount", "count": 3},
                                      {"name": "f", "reason": "BackOff", "count": 1}]


def test_a_pod_not_ended_is_still_running():
    assert pod_still_running({"status": {"phase": "Running"}})
    assert not pod_still_running({"status": {"phase": "Succeeded"}})
    assert not pod_still_running(None)


def test_termination_messages_are_found_in_init_and_main_containers():
    assert has_termination_messages(pod("Succeeded", "out"))
    assert not has_termination_messages(pod("Succeeded"))
    assert has_termination_messages({"status": {"initContainerStatuses": [
        {"name": "i", "state": {"terminated": {"message": "x"}}}]}})
