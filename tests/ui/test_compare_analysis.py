"""Two runs compared stage by stage, on hand-built runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cyclone.ui.compare import compare, delta_text, trend
from cyclone.ui.triage import Change

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage(start: float | None, end: float | None, phase: str = "Succeeded",
          outputs: dict[str, str] | None = None) -> dict:
    status: dict[str, Any] = {"phase": phase}
    if start is not None:
        status["startTime"] = at(start)
    if end is not None:
        status["lastTransitionTime"] = at(end)
    return {"status": status,
            "outputs": [{"key": k, "value": v} for k, v in (outputs or {}).items()]}


def run(name: str, stages: dict[str, dict], *, phase: str = "Succeeded", end: float = 60,
        parameters: dict[str, str] | None = None,
        variables: dict[str, str] | None = None) -> dict:
    spec: dict[str, Any] = {}
    if parameters:
        spec["stages"] = [{"name": "test", "parameters": [
            {"name": k, "value": v} for k, v in parameters.items()]}]
    if variables:
        spec["globalVariables"] = [{"name": k, "value": v} for k, v in variables.items()]
    return {"metadata": {"name": name, "creationTimestamp": at(0)}, "spec": spec,
            "status": {"overall": {"phase": phase, "startTime": at(0),
                                   "lastTransitionTime": at(end)},
                       "completionTime": at(end), "stages": stages}}


def test_each_stage_gets_both_phases_durations_and_the_delta() -> None:
    a = run("green", {"version": stage(0, 5, outputs={"version": "1.0"}),
                      "build": stage(5, 25), "test": stage(25, 45)}, end=45)
    b = run("red", {"version": stage(0, 5, outputs={"version": "1.1"}),
                    "build": stage(5, 65), "test": stage(65, 67, "Failed")},
            phase="Failed", end=67)
    found = compare(a, b)
    assert (found.a, found.b, found.phase_a, found.phase_b) == ("green", "red", "Succeeded",
                                                                "Failed")
    assert (found.seconds_a, found.seconds_b, found.delta) == (45, 67, "+22s")
    rows = {row.stage: row for row in found.stages}
    assert [row.stage for row in found.stages] == ["version", "build", "test"]
    assert (rows["build"].seconds_a, rows["build"].seconds_b) == (20, 60)
    assert (rows["build"].delta, rows["build"].trend) == ("+40s", "slower")
    assert (rows["test"].phase_a, rows["test"].phase_b, rows["test"].phase_changed) == \
        ("Succeeded", "Failed", True)
    assert (rows["test"].delta, rows["test"].trend) == ("-18s", "faster")
    assert (rows["version"].delta, rows["version"].trend) == ("\N{PLUS-MINUS SIGN}0.0s", "same")
    assert rows["version"].outputs == [Change("version", "1.0", "1.1")]
    assert [row.stage for row in found.output_changes] == ["version"]


def test_stages_in_one_run_only_are_listed_with_the_side_they_ran_on() -> None:
    a = run("a", {"build": stage(0, 10), "old-lint": stage(0, 3)})
    b = run("b", {"build": stage(0, 10), "new-scan": stage(2, 4)})
    rows = {row.stage: row for row in compare(a, b).stages}
    assert [row.stage for row in compare(a, b).stages] == ["build", "old-lint", "new-scan"]
    assert (rows["old-lint"].only_in, rows["old-lint"].phase_b, rows["old-lint"].delta) == \
        ("a", None, "")
    assert (rows["new-scan"].only_in, rows["new-scan"].phase_a, rows["new-scan"].trend) == \
        ("b", None, "")
    assert rows["build"].only_in == ""


def test_unstarted_stages_come_last_and_a_running_stage_counts_elapsed_time() -> None:
    a = run("a", {"build": stage(0, 10), "deploy": stage(None, None, "Pending")})
    b = run("b", {"build": stage(0, None, "Running"), "deploy": stage(None, None, "Pending")},
            phase="Running")
    b["status"]["overall"].pop("lastTransitionTime")
    b["status"].pop("completionTime")
    found = compare(a, b, now=T0 + timedelta(seconds=30))
    assert [row.stage for row in found.stages] == ["build", "deploy"]
    assert found.stages[0].seconds_b == 30 and found.stages[0].trend == "slower"
    assert found.stages[1].seconds_a is None and found.stages[1].delta == ""
    assert found.seconds_b == 30


def test_parameter_and_variable_differences_are_listed() -> None:
    a = run("a", {}, parameters={"FAIL": "no"}, variables={"ENV": "dev", "OLD": "1"})
    b = run("b", {}, parameters={"FAIL": "yes"}, variables={"ENV": "dev"})
    found = compare(a, b)
    assert found.parameters == [Change("test/FAIL", "no", "yes")]
    assert found.variables == [Change("OLD", "1", None)]
    assert compare(a, a).parameters == [] and compare(a, a).variables == []


def test_runs_without_status_compare_to_empty_rows() -> None:
    found = compare({"metadata": {"name": "a"}}, {"metadata": {"name": "b"}})
    assert found.stages == [] and found.seconds_a is None and found.delta == ""


def test_small_moves_are_the_same_and_deltas_read_as_durations() -> None:
    assert trend(100, 109) == "same" and trend(100, 111) == "slower"
    assert trend(2, 2.8) == "same" and trend(2, 3.2) == "slower" and trend(10, 5) == "faster"
    assert trend(None, 3) == ""
    assert delta_text(10, 75) == "+1m5s" and delta_text(5, 2.5) == "-2.5s"
    assert delta_text(None, 1) == ""


def test_a_one_second_move_is_noise_of_second_precision_times() -> None:
    assert trend(1, 0) == "same" and trend(0, 1) == "same" and trend(0, 1.5) == "slower"
