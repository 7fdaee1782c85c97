"""The run timeline: bars on a common axis, ordered by start, running stages up to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cyclone.ui.timeline import MIN_WIDTH, build_timeline, label_side, tick_step

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def stage(phase: str, start: float | None = None, end: float | None = None) -> dict:
    status: dict = {"phase": phase}
    if start is not None:
        status["startTime"] = at(start)
    if end is not None:
        status["lastTransitionTime"] = at(end)
    return {"status": status}


def run_of(stages: dict, start: float | None = 0) -> dict:
    overall = {"phase": "Running"}
    if start is not None:
        overall["startTime"] = at(start)
    return {"status": {"overall": overall, "stages": stages}}


def test_a_run_that_has_not_started_has_empty_bars_for_every_known_stage() -> None:
    timeline = build_timeline({"status": {}}, ["b", "a"], now=T0)
    assert [b.stage for b in timeline.bars] == ["b", "a"]
    assert all(b.start is None and b.width == 0 for b in timeline.bars)
    assert timeline.origin is None


def test_bars_span_from_start_to_finish_in_percent_of_the_run() -> None:
    run = run_of({"a": stage("Succeeded", 0, 25), "b": stage("Failed", 25, 100),
                  "c": stage("Succeeded", 50, 75)})
    timeline = build_timeline(run, ["a", "b", "c"], now=T0 + timedelta(seconds=500))
    bars = {b.stage: b for b in timeline.bars}
    assert timeline.span == 100
    assert (bars["a"].left, bars["a"].width) == (0, 25)
    assert (bars["b"].left, bars["b"].width) == (25, 75)
    assert (bars["c"].left, bars["c"].width) == (50, 25)
    assert bars["b"].phase == "Failed" and bars["b"].duration == "1m15s"


def test_bars_are_ordered_by_start_then_by_the_given_order_and_unstarted_last() -> None:
    run = run_of({"late": stage("Succeeded", 30, 40), "early": stage("Succeeded", 0, 10),
                  "tie-b": stage("Succeeded", 10, 20), "tie-a": stage("Succeeded", 10, 20),
                  "waiting": stage("Pending")})
    order = ["waiting", "tie-b", "tie-a", "early", "late"]
    timeline = build_timeline(run, order, now=T0 + timedelta(seconds=40))
    assert [b.stage for b in timeline.bars] == ["early", "tie-b", "tie-a", "late", "waiting"]


def test_a_running_stage_reaches_now_and_stretches_the_axis() -> None:
    run = run_of({"a": stage("Succeeded", 0, 10), "b": stage("Running", 10)})
    timeline = build_timeline(run, now=T0 + timedelta(seconds=40))
    bars = {b.stage: b for b in timeline.bars}
    assert timeline.span == 40
    assert bars["b"].running and bars["b"].end == 40
    assert (bars["b"].left, bars["b"].width) == (25, 75)
    assert not bars["a"].running


def test_a_very_short_stage_still_shows_as_a_sliver() -> None:
    run = run_of({"long": stage("Succeeded", 0, 3600), "blip": stage("Succeeded", 1800, 1800)})
    bars = {b.stage: b for b in build_timeline(run, now=T0).bars}
    assert bars["blip"].width == MIN_WIDTH
    assert bars["blip"].left == 50


def test_stages_the_workflow_does_not_list_are_still_drawn() -> None:
    run = run_of({"gone": stage("Succeeded", 0, 5)})
    assert [b.stage for b in build_timeline(run, ["kept"], now=T0).bars] == ["gone", "kept"]


def test_unreadable_times_count_as_not_started() -> None:
    run = run_of({"a": {"status": {"phase": "Running", "startTime": "yesterday"}}}, start=None)
    timeline = build_timeline(run, now=T0)
    assert timeline.bars[0].start is None


@pytest.mark.parametrize(("span", "step"), [(5, 1), (40, 5), (100, 15), (600, 120),
                                             (3600, 600), (86400 * 3, 43200)])
def test_ticks_fall_on_round_intervals_and_stay_few(span: float, step: int) -> None:
    assert tick_step(span) == step
    run = run_of({"a": stage("Succeeded", 0, span)})
    ticks = build_timeline(run, now=T0).ticks
    assert 2 <= len(ticks) <= 9
    assert ticks[0].label == "0" and ticks[0].left == 0
    assert all(0 <= t.left <= 100 for t in ticks)


def test_tick_labels_read_as_durations() -> None:
    run = run_of({"a": stage("Succeeded", 0, 3700)})
    labels = [t.label for t in build_timeline(run, now=T0).ticks]
    assert labels == ["0", "10m", "20m", "30m", "40m", "50m", "1h"]


def test_two_thousand_stages_build_quickly_and_stay_in_bounds() -> None:
    stages = {f"s{i:04d}": stage("Succeeded", i, i + 3) for i in range(2000)}
    timeline = build_timeline(run_of(stages), sorted(stages), now=T0)
    assert len(timeline.bars) == 2000
    assert all(0 <= b.left <= 100 and b.left + b.width <= 100.001 for b in timeline.bars)


def test_a_bar_at_the_very_end_stays_inside_the_axis() -> None:
    run = run_of({"a": stage("Succeeded", 0, 100), "b": stage("Succeeded", 100, 100)})
    bars = {b.stage: b for b in build_timeline(run, now=T0).bars}
    assert bars["b"].left + bars["b"].width == pytest.approx(100)
    assert bars["b"].width == MIN_WIDTH


@pytest.mark.parametrize(("left", "width", "side"), [(0, 50, "after"), (70, 15, "after"),
                                                      (0, 100, "inside"), (80, 20, "inside"),
                                                      (99.7, 0.3, "before"), (80, 10, "before")])
def test_the_duration_goes_where_there_is_room(left: float, width: float, side: str) -> None:
    assert label_side(left, width) == side
