from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cyclone.engine.core.cron import (
    CronError,
    FiringAction,
    cron_run_name,
    decide_firing,
    parse_schedule,
    unfinished_runs,
)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_five_field_schedule_fires_on_minutes():
    schedule = parse_schedule("*/15 * * * *")
    assert schedule.next_after(at(2026, 1, 1, 10, 7, 30)) == at(2026, 1, 1, 10, 15)
    assert schedule.latest_at_or_before(at(2026, 1, 1, 10, 7, 30)) == at(2026, 1, 1, 10, 0)


def test_six_field_schedule_has_seconds_first():
    schedule = parse_schedule("*/10 * * * * *")
    assert schedule.next_after(at(2026, 1, 1, 10, 0, 5)) == at(2026, 1, 1, 10, 0, 10)
    assert schedule.latest_at_or_before(at(2026, 1, 1, 10, 0, 10)) == at(2026, 1, 1, 10, 0, 10)
    moment = at(2026, 1, 1, 10, 0, 19) + timedelta(microseconds=999_000)
    assert schedule.latest_at_or_before(moment) == at(2026, 1, 1, 10, 0, 10)


def test_timezone_moves_the_firing_in_utc():
    schedule = parse_schedule("0 9 * * *", "Asia/Shanghai")
    assert schedule.next_after(at(2026, 1, 1, 0, 0)) == at(2026, 1, 1, 1, 0)


def test_timezone_follows_daylight_saving():
    schedule = parse_schedule("0 9 * * *", "Europe/Berlin")
    assert schedule.next_after(at(2026, 1, 10)) == at(2026, 1, 10, 8)
    assert schedule.next_after(at(2026, 7, 10)) == at(2026, 7, 10, 7)


@pytest.mark.parametrize("schedule, zone", [
    ("* * * *", None), ("61 * * * *", None), ("* * * * * * *", None),
    ("*/5 * * * *", "Mars/Olympus"),
])
def test_bad_schedules_are_rejected(schedule, zone):
    with pytest.raises(CronError):
        parse_schedule(schedule, zone)


def test_nothing_due_before_the_next_time():
    schedule = parse_schedule("0 * * * *")
    decision = decide_firing(schedule, at(2026, 1, 1, 10, 30), since=at(2026, 1, 1, 10, 0))
    assert decision.action == FiringAction.WAIT
    assert decision.next_time == at(2026, 1, 1, 11, 0)


def test_many_missed_ticks_fire_once_for_the_latest():
    schedule = parse_schedule("* * * * * *")
    decision = decide_firing(schedule, at(2026, 1, 1, 10, 5, 0), since=at(2026, 1, 1, 10, 0))
    assert decision.action == FiringAction.FIRE
    assert decision.scheduled_time == at(2026, 1, 1, 10, 5, 0)
    again = decide_firing(schedule, at(2026, 1, 1, 10, 5, 0), since=decision.scheduled_time)
    assert again.action == FiringAction.WAIT


def test_missed_time_beyond_starting_deadline_is_skipped():
    schedule = parse_schedule("0 * * * *")
    late = decide_firing(schedule, at(2026, 1, 1, 10, 2), since=at(2026, 1, 1, 9, 0),
                         starting_deadline_seconds=60)
    assert late.action == FiringAction.MISSED
    in_time = decide_firing(schedule, at(2026, 1, 1, 10, 0, 30), since=at(2026, 1, 1, 9, 0),
                            starting_deadline_seconds=60)
    assert in_time.action == FiringAction.FIRE


def test_forbid_skips_while_a_run_is_unfinished():
    schedule = parse_schedule("* * * * *")
    decision = decide_firing(schedule, at(2026, 1, 1, 10, 1), since=at(2026, 1, 1, 10, 0),
                             concurrency_policy="Forbid", active_runs=["t-1"])
    assert decision.action == FiringAction.FORBIDDEN
    free = decide_firing(schedule, at(2026, 1, 1, 10, 1), since=at(2026, 1, 1, 10, 0),
                         concurrency_policy="Forbid", active_runs=[])
    assert free.action == FiringAction.FIRE


def test_replace_stops_unfinished_runs_and_allow_keeps_them():
    schedule = parse_schedule("* * * * *")
    now, since = at(2026, 1, 1, 10, 1), at(2026, 1, 1, 10, 0)
    replace = decide_firing(schedule, now, since=since, concurrency_policy="Replace",
                            active_runs=["t-1"])
    assert (replace.action, replace.replace) == (FiringAction.FIRE, ["t-1"])
    allow = decide_firing(schedule, now, since=since, active_runs=["t-1"])
    assert (allow.action, allow.replace) == (FiringAction.FIRE, [])


def test_unfinished_runs_ignore_terminal_and_stopped():
    runs = [
        {"metadata": {"name": "a"}, "status": {"overall": {"phase": "Running"}}},
        {"metadata": {"name": "b"}, "status": {"overall": {"phase": "Succeeded"}}},
        {"metadata": {"name": "c"}},
        {"metadata": {"name": "d"}, "spec": {"stopped": True}},
    ]
    assert unfinished_runs(runs) == ["a", "c"]


def test_run_name_is_deterministic_per_scheduled_time_and_short():
    moment = at(2026, 1, 1, 10, 0, 5)
    assert cron_run_name("nightly", moment) == f"nightly-{int(moment.timestamp())}"
    assert cron_run_name("nightly", moment) == cron_run_name("nightly", moment)
    assert cron_run_name("nightly", moment) != cron_run_name("nightly", moment
                                                             + timedelta(seconds=1))
    assert len(cron_run_name("x" * 100, moment)) == 63
