"""Cron firing decisions at their boundaries: the minute, the deadline, what a decision carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cyclone.engine.core.cron import (
    CronError,
    FiringAction,
    FiringDecision,
    cron_run_name,
    decide_firing,
    parse_schedule,
)

EVERY_MINUTE = parse_schedule("* * * * *")
HOURLY = parse_schedule("0 * * * *")


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 1, 1, hour, minute, second, tzinfo=UTC)


def test_the_latest_time_of_an_every_minute_schedule_is_never_in_the_future():
    assert EVERY_MINUTE.latest_at_or_before(at(10, 7, 30)) == at(10, 7)
    assert EVERY_MINUTE.latest_at_or_before(at(10, 7, 0)) == at(10, 7)
    assert EVERY_MINUTE.next_after(at(10, 7, 30)) == at(10, 8)


def test_a_firing_exactly_at_its_starting_deadline_still_fires():
    decision = decide_firing(HOURLY, at(10, 0, 30), since=at(9, 0),
                             starting_deadline_seconds=30)
    assert decision == FiringDecision(FiringAction.FIRE, at(11, 0), at(10, 0), [])
    late = decide_firing(HOURLY, at(10, 0, 31), since=at(9, 0), starting_deadline_seconds=30)
    assert late == FiringDecision(FiringAction.MISSED, at(11, 0), at(10, 0))


def test_a_forbidden_firing_names_the_time_it_gives_up_and_when_to_look_again():
    decision = decide_firing(HOURLY, at(10, 5), since=at(9, 0), concurrency_policy="Forbid",
                             active_runs=["nightly-1"])
    assert decision == FiringDecision(FiringAction.FORBIDDEN, at(11, 0), at(10, 0))


def test_a_six_field_schedule_is_read_with_seconds_first():
    with pytest.raises(CronError, match="'0 0 1 \\* \\* 30' is not a valid cron schedule"):
        parse_schedule("0 0 1 * * 30")


@pytest.mark.parametrize(
    ("schedule", "zone", "message"),
    [
        ("* * *", None, "'\\* \\* \\*' must have 5 fields \\(or 6 with seconds first\\)"),
        ("* * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_a_bad_schedule_is_refused_with_the_reason(schedule, zone, message):
    with pytest.raises(CronError, match=message):
        parse_schedule(schedule, zone)


def test_a_long_trigger_name_is_cut_without_a_dangling_dash():
    trigger = "a" * 51 + "-" + "b" * 20
    name = cron_run_name(trigger, at(10, 0))
    assert name == "a" * 51 + "-" + str(int(at(10, 0).timestamp()))
    assert len(name) <= 63
