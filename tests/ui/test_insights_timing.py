"""The critical path and the regressions of a run, on hand-built run objects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from support.run_objects import DIAMOND, T0, at

from cyclone.ui.insights import critical_path, regressions

X = "\N{MULTIPLICATION SIGN}"


def stage(start: float | None, end: float | None, phase: str = "Succeeded",
          **extra: Any) -> dict:
    status: dict[str, Any] = {"phase": phase}
    if start is not None:
        status["startTime"] = at(start)
    if end is not None:
        status["lastTransitionTime"] = at(end)
    return {"status": status, **extra}


def run(stages: dict[str, dict], *, name: str = "r", phase: str = "Succeeded",
        created: float = 0) -> dict:
    return {"metadata": {"name": name, "creationTimestamp": at(created)},
            "status": {"overall": {"phase": phase}, "stages": stages}}


def test_the_critical_path_of_a_diamond_goes_through_the_slower_branch() -> None:
    finished = run({"version": stage(0, 5), "build-linux": stage(5, 50),
                    "build-mac": stage(5, 20), "report": stage(50, 55)})
    assert critical_path(finished, DIAMOND) == ["version", "build-linux", "report"]
    finished["status"]["stages"]["build-mac"] = stage(5, 90)
    finished["status"]["stages"]["report"] = stage(90, 95)
    assert critical_path(finished, DIAMOND) == ["version", "build-mac", "report"]


def test_a_running_stage_weighs_its_elapsed_time_and_unstarted_stages_are_left_out() -> None:
    running = run({"version": stage(0, 5), "build-linux": stage(5, None, "Running"),
                   "build-mac": stage(5, 20), "report": stage(None, None, "Pending")},
                  phase="Running")
    assert critical_path(running, DIAMOND, now=T0 + timedelta(seconds=10)) == \
        ["version", "build-mac"]
    assert critical_path(running, DIAMOND, now=T0 + timedelta(seconds=60)) == \
        ["version", "build-linux"]


def test_equal_paths_are_broken_by_the_later_end_then_by_name() -> None:
    tied = run({"version": stage(0, 5), "build-linux": stage(5, 15), "build-mac": stage(5, 15),
                "report": stage(None, None, "Pending")}, phase="Running")
    assert critical_path(tied, DIAMOND, now=T0) == ["version", "build-linux"]
    later = run({"a": stage(0, 10), "b": stage(20, 30)})
    assert critical_path(later, {"spec": {"stages": [{"name": "a"}, {"name": "b"}]}}) == ["b"]


def test_without_a_workflow_the_runs_recorded_depends_are_used() -> None:
    recorded = run({"version": stage(0, 5),
                    "build": stage(5, 30, depends=["version"]),
                    "lint": stage(0, 10)})
    assert critical_path(recorded, None) == ["version", "build"]


def test_a_run_that_has_not_started_has_no_critical_path() -> None:
    assert critical_path(run({}, phase="Pending"), DIAMOND) == []
    assert critical_path(run({"version": stage(None, None, "Pending")}, phase="Pending"),
                         DIAMOND) == []
    assert critical_path({"metadata": {"name": "x"}}, DIAMOND) == []


def test_a_dependency_cycle_in_a_broken_workflow_does_not_loop() -> None:
    cyclic = {"spec": {"stages": [{"name": "a", "depends": ["b"]},
                                  {"name": "b", "depends": ["a"]}]}}
    path = critical_path(run({"a": stage(0, 5), "b": stage(5, 20)}), cyclic)
    assert path[-1] in {"a", "b"} and len(path) == len(set(path))


def history(durations: list[float], stage_name: str = "build", *, phase: str = "Succeeded"
            ) -> list[dict]:
    return [run({stage_name: stage(0, seconds), "lint": stage(0, 2)}, name=f"h{i}",
                phase=phase, created=-1000 + i) for i, seconds in enumerate(durations)]


def test_a_stage_much_slower_than_its_median_is_flagged_with_the_numbers() -> None:
    slow = run({"build": stage(0, 29), "lint": stage(0, 2)})
    flagged = regressions(slow, history([12] * 10))
    assert flagged == {"build": f"2.4{X} slower than the median of 10 runs (12s)"}


def test_regressions_need_both_the_factor_and_the_minimum_seconds() -> None:
    past = history([2, 2, 2])
    assert regressions(run({"build": stage(0, 6)}), past) == {}
    assert regressions(run({"build": stage(0, 7)}), past) == \
        {"build": f"3.5{X} slower than the median of 3 runs (2.0s)"}
    assert regressions(run({"build": stage(0, 7)}), past, min_seconds=6) == {}
    assert regressions(run({"build": stage(0, 14)}), history([10] * 5)) == {}
    assert regressions(run({"build": stage(0, 15)}), history([10] * 5)) == \
        {"build": f"1.5{X} slower than the median of 5 runs (10s)"}
    assert regressions(run({"build": stage(0, 15)}), history([10] * 5), factor=2) == {}


def test_only_the_recent_successful_earlier_runs_count() -> None:
    old_slow = history([100] * 5)
    recent_fast = [run({"build": stage(0, 10)}, name=f"n{i}", created=-10 + i)
                   for i in range(10)]
    failed = history([1] * 10, phase="Failed")
    later = [run({"build": stage(0, 1)}, name=f"l{i}", created=100 + i) for i in range(10)]
    current = run({"build": stage(0, 20)})
    everything = old_slow + recent_fast + failed + later + [current]
    assert regressions(current, everything) == \
        {"build": f"2.0{X} slower than the median of 10 runs (10s)"}
    assert regressions(current, everything, window=15) == \
        {"build": f"2.0{X} slower than the median of 15 runs (10s)"}
    assert regressions(current, old_slow + failed) == {}


def test_too_few_samples_or_an_unstarted_stage_are_not_flagged() -> None:
    assert regressions(run({"build": stage(0, 100)}), history([1, 1])) == {}
    assert regressions(run({"build": stage(0, 100)}), history([1, 1]), min_runs=2) == \
        {"build": f"100.0{X} slower than the median of 2 runs (1.0s)"}
    assert regressions(run({"build": stage(None, None, "Pending")}), history([1] * 5)) == {}
    assert regressions(run({}), []) == {}


def test_a_running_stage_is_flagged_once_its_elapsed_time_is_too_long() -> None:
    running = run({"build": stage(0, None, "Running")}, phase="Running")
    past = history([10] * 4)
    assert regressions(running, past, now=T0 + timedelta(seconds=12)) == {}
    assert regressions(running, past, now=T0 + timedelta(seconds=30)) == \
        {"build": f"3.0{X} slower than the median of 4 runs (10s)"}


def test_a_stage_that_was_instant_before_gets_no_ratio() -> None:
    assert regressions(run({"build": stage(0, 9)}), history([0, 0, 0])) == \
        {"build": "slower than the median of 3 runs (0.0s)"}


def test_a_chain_of_instant_stages_runs_to_the_last_of_them() -> None:
    instant = run({"version": stage(0, 0), "build-linux": stage(0, 0),
                   "build-mac": stage(0, 0), "report": stage(0, 0)})
    assert critical_path(instant, DIAMOND) == ["version", "build-linux", "report"]
