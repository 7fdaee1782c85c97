"""The working copy of a run's status: terminal statuses stay, the cached run is never
changed, and only real changes count."""

from __future__ import annotations

import copy
from datetime import timedelta

from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.timefmt import rfc3339

from .fixtures import NOW


def run_with(stages: dict, overall: dict | None = None) -> dict:
    return {"metadata": {"name": "r", "namespace": "ns"}, "spec": {},
            "status": {"stages": stages, **({"overall": overall} if overall else {})}}


def test_a_terminal_stage_status_is_never_overwritten():
    state = RunState(run_with({"a": {"status": {"phase": "Succeeded"}}}), NOW)
    assert state.set_stage("a", "Failed", "X") is False
    assert state.stage_phase("a") == "Succeeded"
    assert not state.changed


def test_editing_a_stage_leaves_the_cached_run_as_it_was():
    run = run_with({"a": {"status": {"phase": "Running"}, "attempts": 1}})
    before = copy.deepcopy(run)
    state = RunState(run, NOW)
    state.stage("a")["attempts"] = 2
    state.set_stage("a", "Failed", "PodFailed")
    assert run == before
    assert state.changed


def test_the_same_status_again_keeps_its_transition_time():
    earlier = rfc3339(NOW - timedelta(minutes=1))
    state = RunState(run_with({"a": {"status": {
        "phase": "Running", "reason": "PodRunning", "lastTransitionTime": earlier}}}), NOW)
    state.set_stage("a", "Running", "PodRunning")
    assert not state.changed
    state.set_stage("a", "Running", "PodPending")
    assert state.stages["a"]["status"]["lastTransitionTime"] == earlier


def test_an_ended_run_gets_its_completion_time_and_stays_ended():
    state = RunState(run_with({}, {"phase": "Running"}), NOW)
    state.status["queued"] = True
    state.set_overall("Failed", "Timeout")
    assert state.status["completionTime"] == rfc3339(NOW)
    assert "queued" not in state.status
    state.set_overall("Running")
    assert state.overall_phase == "Failed"


def test_a_pending_run_has_no_start_time():
    state = RunState(run_with({}), NOW)
    state.set_overall("Pending", "Queued")
    assert "startTime" not in state.overall


def test_unfinished_stages_are_the_non_terminal_ones():
    state = RunState(run_with({"a": {"status": {"phase": "Running"}},
                               "b": {"status": {"phase": "Cancelled"}}, "c": {}}), NOW)
    assert state.non_terminal_stages() == ["a", "c"]
