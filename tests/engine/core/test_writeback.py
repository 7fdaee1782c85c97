"""Which changes of a reconcile are progress only (`core.writeback.progress_only`)."""

from __future__ import annotations

from datetime import UTC, datetime

from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.writeback import progress_only

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _run(status: dict | None = None) -> dict:
    run = {"metadata": {"name": "r", "namespace": "n"}, "spec": {}}
    if status is not None:
        run["status"] = status
    return run


def _stage(phase: str) -> dict:
    return {"status": {"phase": phase, "lastTransitionTime": "2030-01-01T00:00:00Z"}}


def test_admitting_a_run_and_starting_its_stages_is_progress():
    state = RunState(_run(), NOW)
    state.set_overall("Running")
    state.status["deadline"] = "2030-01-01T01:00:00Z"
    state.set_stage("a", "Running", "StagePodCreated")
    state.set_stage("b", "Pending")
    assert progress_only(state)


def test_a_stage_reaching_a_terminal_phase_is_an_outcome():
    state = RunState(_run({"stages": {"a": _stage("Running")}}), NOW)
    state.set_stage("a", "Succeeded")
    assert not progress_only(state)


def test_a_stage_cancelled_before_it_started_is_an_outcome():
    state = RunState(_run({"stages": {"b": _stage("Pending")}}), NOW)
    state.set_stage("b", "Cancelled", "UpstreamFailed")
    assert not progress_only(state)


def test_a_retry_of_a_failed_attempt_is_progress():
    state = RunState(_run({"stages": {"a": _stage("Running")}}), NOW)
    state.set_stage("a", "Pending", "RetryAfterFailure")
    assert progress_only(state)


def test_an_ended_run_is_an_outcome():
    state = RunState(_run({"overall": {"phase": "Running"}}), NOW)
    state.set_overall("Failed", "Timeout")
    assert not progress_only(state)


def test_queueing_a_run_or_letting_it_out_of_the_queue_is_written_at_once():
    queued = RunState(_run(), NOW)
    queued.status["queued"] = True
    assert not progress_only(queued)
    released = RunState(_run({"queued": True}), NOW)
    released.status.pop("queued")
    assert not progress_only(released)


def test_a_stage_entry_touched_without_a_change_is_still_progress():
    state = RunState(_run({"stages": {"a": _stage("Succeeded")}}), NOW)
    state.stage("a")
    assert progress_only(state)


def test_a_stage_starting_to_wait_for_an_outside_system_is_written_before_its_request():
    state = RunState(_run({"stages": {"approve": _stage("Pending")}}), NOW)
    state.set_stage("approve", "Waiting", "DelegationWaiting")
    assert not progress_only(state)
