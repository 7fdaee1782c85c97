"""Status rules on the API's own models, and the statuses the controllers write."""

from datetime import UTC, datetime, timedelta

import pytest

from cyclone.api.common import Phase, Status
from cyclone.api.workflowrun import StageStatus
from cyclone.engine.core.status import apply_stage_status, make_status, overall_phase

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
EARLIER = "2026-05-01T11:00:00Z"


def test_overall_phase_reads_stage_status_models_and_their_trivial_flag():
    stages = {
        "lint": StageStatus(status=Status(phase=Phase.FAILED), trivial=True),
        "build": StageStatus(status=Status(phase=Phase.SUCCEEDED)),
    }
    assert overall_phase(stages) == "Succeeded"
    stages["lint"] = StageStatus(status=Status(phase=Phase.FAILED), trivial=False)
    assert overall_phase(stages) == "Failed"


def test_overall_phase_reads_entries_whose_status_is_a_model():
    stages = {"lint": {"status": Status(phase=Phase.FAILED), "trivial": True},
              "build": {"status": Status(phase=Phase.RUNNING)}}
    assert overall_phase(stages) == "Running"
    stages["build"] = {"status": Status(phase=Phase.SUCCEEDED)}
    assert overall_phase(stages) == "Succeeded"


def test_overall_phase_reads_bare_status_models():
    assert overall_phase({"a": Status(phase=Phase.FAILED), "b": "Succeeded"}) == "Failed"
    assert overall_phase({"a": Status(phase=Phase.WAITING), "b": "Succeeded"}) == "Waiting"


def test_overall_phase_reads_enum_phases_in_run_status_dicts():
    assert overall_phase({"a": {"status": {"phase": Phase.FAILED}}, "b": "Succeeded"}) == "Failed"


def test_make_status_is_a_plain_dict_with_the_transition_time():
    assert make_status(Phase.FAILED, NOW, "PodFailed", "exit code 1") == {
        "phase": "Failed",
        "lastTransitionTime": "2026-05-01T12:00:00Z",
        "reason": "PodFailed",
        "message": "exit code 1",
    }
    assert make_status("Running", NOW) == {
        "phase": "Running",
        "lastTransitionTime": "2026-05-01T12:00:00Z",
    }


def test_apply_stage_status_on_models_returns_a_model_with_the_times_set():
    old = Status(phase=Phase.PENDING, last_transition_time=EARLIER)
    result = apply_stage_status(old, Status(phase=Phase.RUNNING, reason="PodRunning"), NOW)
    assert isinstance(result, Status)
    assert result.phase == Phase.RUNNING
    assert result.reason == "PodRunning"
    assert result.last_transition_time == "2026-05-01T12:00:00Z"
    assert result.start_time == "2026-05-01T12:00:00Z"


def test_apply_stage_status_on_models_keeps_times_while_the_phase_holds():
    old = Status(phase=Phase.RUNNING, last_transition_time=EARLIER, start_time=EARLIER)
    result = apply_stage_status(old, Status(phase=Phase.RUNNING, message="still"), LATER)
    assert (result.last_transition_time, result.start_time) == (EARLIER, EARLIER)


def test_a_terminal_model_status_is_never_overwritten():
    old = Status(phase=Phase.SUCCEEDED, last_transition_time=EARLIER)
    assert apply_stage_status(old, Status(phase=Phase.RUNNING), NOW) is old


def test_a_dict_status_over_a_model_stays_a_dict():
    old = Status(phase=Phase.RUNNING, last_transition_time=EARLIER, start_time=EARLIER)
    result = apply_stage_status(old, {"phase": "Succeeded"}, LATER)
    assert result == {
        "phase": "Succeeded",
        "lastTransitionTime": "2026-05-01T12:05:00Z",
        "startTime": EARLIER,
    }


def test_something_that_is_not_a_status_is_refused_by_name():
    with pytest.raises(TypeError, match="not a status: 42"):
        apply_stage_status(42, {"phase": "Running"}, NOW)


def test_a_status_without_transition_time_gets_one_even_when_the_phase_holds():
    result = apply_stage_status({"phase": "Running"}, {"phase": "Running"}, NOW)
    assert result["lastTransitionTime"] == "2026-05-01T12:00:00Z"


def test_a_phase_change_replaces_a_stale_transition_time_of_the_new_status():
    old = {"phase": "Running", "lastTransitionTime": EARLIER}
    result = apply_stage_status(old, {"phase": "Failed", "lastTransitionTime": EARLIER}, NOW)
    assert result["lastTransitionTime"] == "2026-05-01T12:00:00Z"


def test_a_held_phase_without_recorded_time_takes_the_new_status_time():
    result = apply_stage_status({"phase": "Running"},
                                {"phase": "Running", "lastTransitionTime": EARLIER}, NOW)
    assert result["lastTransitionTime"] == EARLIER


def test_the_first_start_keeps_the_start_time_the_new_status_carries():
    old = {"phase": "Pending", "lastTransitionTime": EARLIER}
    result = apply_stage_status(old, {"phase": "Running", "startTime": EARLIER}, NOW)
    assert result["startTime"] == EARLIER


def test_a_pending_status_drops_a_start_time_it_carries():
    result = apply_stage_status(None, {"phase": "Pending", "startTime": EARLIER}, NOW)
    assert "startTime" not in result
