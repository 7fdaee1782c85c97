from __future__ import annotations

from cyclone.engine.core.transitions import StageEnd, run_transition

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:01:10Z"


def stage(phase: str, start: str | None = T0, at: str = T1) -> dict:
    status = {"phase": phase, "lastTransitionTime": at}
    if start:
        status["startTime"] = start
    return {"status": status}


def test_a_run_leaving_pending_for_running_has_started():
    change = run_transition(
        {"overall": {"phase": "Pending"}},
        {"overall": {"phase": "Running", "startTime": T0, "lastTransitionTime": T0},
         "stages": {"build": stage("Running")}})
    assert change.started and change.ended is None and change.stages_ended == []


def test_a_run_already_started_does_not_start_again():
    running = {"overall": {"phase": "Running", "startTime": T0}}
    assert run_transition(running, {"overall": {"phase": "Waiting", "startTime": T0}}).empty


def test_a_run_that_reaches_a_terminal_phase_ends_once_with_its_duration_and_reason():
    before = {"overall": {"phase": "Running", "startTime": T0},
              "stages": {"build": stage("Running"), "test": stage("Pending", None)}}
    after = {"overall": {"phase": "Failed", "startTime": T0, "lastTransitionTime": T2,
                         "reason": "PodFailed", "message": "build failed"},
             "completionTime": T2,
             "stages": {"build": stage("Failed", T0, T2), "test": stage("Cancelled", None, T2)}}
    change = run_transition(before, after)
    assert (change.started, change.ended, change.reason, change.duration_seconds) == (
        False, "Failed", "PodFailed", 70.0)
    assert change.stages_ended == [StageEnd("build", "Failed", 70.0),
                                   StageEnd("test", "Cancelled", None)]
    assert run_transition(after, after).empty


def test_a_run_that_fails_before_starting_is_timed_from_its_creation_and_never_started():
    change = run_transition(
        {}, {"overall": {"phase": "Failed", "startTime": T2, "lastTransitionTime": T2}},
        created=T1)
    assert not change.started and change.ended == "Failed"
    assert change.duration_seconds == 65.0
    change = run_transition({}, {"overall": {"phase": "Failed", "lastTransitionTime": T2}},
                            created=T1)
    assert change.duration_seconds == 65.0


def test_a_stage_ending_is_seen_only_on_the_write_that_ended_it():
    before = {"overall": {"phase": "Running", "startTime": T0},
              "stages": {"a": stage("Succeeded", T0, T1), "b": stage("Running")}}
    after = {"overall": {"phase": "Running", "startTime": T0},
             "stages": {"a": stage("Succeeded", T0, T1), "b": stage("Succeeded", T0, T2)}}
    assert run_transition(before, after).stages_ended == [StageEnd("b", "Succeeded", 70.0)]


def test_unreadable_times_give_no_duration():
    change = run_transition({}, {"overall": {"phase": "Succeeded", "startTime": "yesterday",
                                             "lastTransitionTime": T1}})
    assert change.ended == "Succeeded" and change.duration_seconds is None


def test_a_stage_cancelled_before_it_began_is_not_timed_though_its_end_gives_it_a_start():
    before = {"overall": {"phase": "Running", "startTime": T0},
              "stages": {"late": stage("Pending", None)}}
    after = {"overall": {"phase": "Cancelled", "startTime": T0, "lastTransitionTime": T2},
             "stages": {"late": stage("Cancelled", T2, T2)}}
    change = run_transition(before, after)
    assert change.stages_ended == [StageEnd("late", "Cancelled", None)]
    assert change.duration_seconds == 70.0


def test_a_write_that_names_its_changed_stages_is_read_for_those_only():
    before = {"overall": {"phase": "Running", "startTime": T0},
              "stages": {"a": stage("Running"), "b": stage("Running")}}
    after = {"overall": {"phase": "Running", "startTime": T0},
             "stages": {"a": stage("Succeeded", T0, T1), "b": stage("Succeeded", T0, T2)}}
    assert run_transition(before, after, stages=["b", "gone"]).stages_ended == [
        StageEnd("b", "Succeeded", 70.0)]
