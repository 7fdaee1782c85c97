from datetime import UTC, datetime, timedelta

import pytest

from cyclone.engine.core.status import apply_stage_status, is_terminal, overall_phase

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("stages", "trivial", "expected"),
    [
        ({}, (), "Pending"),
        ({"a": "Running", "b": "Failed"}, (), "Running"),
        ({"a": "Waiting", "b": "Pending"}, (), "Waiting"),
        ({"a": "Waiting", "b": "Running"}, (), "Running"),
        ({"a": "Failed", "b": "Pending"}, (), "Failed"),
        ({"a": "Cancelled", "b": "Succeeded"}, (), "Failed"),
        ({"a": "Failed", "b": "Succeeded"}, ("a",), "Succeeded"),
        ({"a": "Cancelled", "b": "Succeeded"}, ("a",), "Succeeded"),
        ({"a": "Failed", "b": "Pending"}, ("a",), "Running"),
        ({"a": "Succeeded", "b": "Pending"}, (), "Running"),
        ({"a": "Succeeded", "b": "Succeeded"}, (), "Succeeded"),
        ({"a": None}, (), "Running"),
    ],
)
def test_overall_phase_follows_reference_rules(stages, trivial, expected):
    assert overall_phase(stages, trivial) == expected


def test_overall_phase_reads_trivial_from_run_status_entries():
    stages = {
        "lint": {"status": {"phase": "Failed"}, "trivial": True},
        "build": {"status": {"phase": "Succeeded"}, "trivial": False},
    }
    assert overall_phase(stages) == "Succeeded"
    stages["lint"]["trivial"] = False
    assert overall_phase(stages) == "Failed"


@pytest.mark.parametrize(
    ("phase", "terminal"),
    [
        ("Pending", False), ("Running", False), ("Waiting", False),
        ("Succeeded", True), ("Failed", True), ("Cancelled", True), (None, False),
    ],
)
def test_is_terminal(phase, terminal):
    assert is_terminal(phase) is terminal


@pytest.mark.parametrize("terminal", ["Succeeded", "Failed", "Cancelled"])
def test_terminal_stage_status_is_never_overwritten(terminal):
    old = {"phase": terminal, "lastTransitionTime": "2026-05-01T11:00:00Z", "reason": "X"}
    new = {"phase": "Running", "reason": "PodRunning"}
    assert apply_stage_status(old, new, NOW) == old


def test_phase_change_sets_transition_time_and_start_time():
    old = {"phase": "Pending", "lastTransitionTime": "2026-05-01T11:00:00Z"}
    result = apply_stage_status(old, {"phase": "Running", "reason": "PodRunning"}, NOW)
    assert result == {
        "phase": "Running",
        "reason": "PodRunning",
        "lastTransitionTime": "2026-05-01T12:00:00Z",
        "startTime": "2026-05-01T12:00:00Z",
    }


def test_same_phase_keeps_transition_time_and_start_time():
    old = {
        "phase": "Running",
        "lastTransitionTime": "2026-05-01T12:00:00Z",
        "startTime": "2026-05-01T12:00:00Z",
    }
    result = apply_stage_status(old, {"phase": "Running", "message": "still"}, LATER)
    assert result["lastTransitionTime"] == "2026-05-01T12:00:00Z"
    assert result["startTime"] == "2026-05-01T12:00:00Z"
    assert result["message"] == "still"


def test_finishing_keeps_start_time_and_moves_transition_time():
    old = {
        "phase": "Running",
        "lastTransitionTime": "2026-05-01T12:00:00Z",
        "startTime": "2026-05-01T12:00:00Z",
    }
    result = apply_stage_status(old, {"phase": "Succeeded", "reason": "PodSucceed"}, LATER)
    assert result["startTime"] == "2026-05-01T12:00:00Z"
    assert result["lastTransitionTime"] == "2026-05-01T12:05:00Z"


def test_pending_stage_has_no_start_time():
    result = apply_stage_status(None, {"phase": "Pending"}, NOW)
    assert result == {"phase": "Pending", "lastTransitionTime": "2026-05-01T12:00:00Z"}


def test_missing_new_status_keeps_old():
    old = {"phase": "Running"}
    assert apply_stage_status(old, None, NOW) is old


def test_stages_in_scope_without_status_count_as_pending():
    assert overall_phase({"a": "Succeeded"}, scope=["a", "b"]) == "Running"
    assert overall_phase({"a": "Failed"}, scope=["a", "b"]) == "Failed"
    assert overall_phase({}, scope=["a"]) == "Running"
    assert overall_phase({"a": "Succeeded"}, scope=["a"]) == "Succeeded"
    assert overall_phase({}, scope=[]) == "Pending"
