"""Pure decisions about bad input: bounded durations and runs that could never start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cyclone.api.formats import MAX_TIMEOUT, parse_duration
from cyclone.engine.core.dag import scope_problems
from cyclone.engine.core.timeouts import deadline_for, timeout_of

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
CHAIN = [{"name": "a"}, {"name": "b", "depends": ["a"]}, {"name": "c", "depends": ["b"]},
         {"name": "x"}]


@pytest.mark.parametrize("text", ["99999999999h", "9" * 400 + "h", "31d", "721h", "44641m"])
def test_absurd_timeouts_are_refused_not_overflowed(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        timeout_of(text, timedelta(hours=1))


def test_a_run_with_an_absurd_timeout_has_no_deadline_but_a_clear_error() -> None:
    with pytest.raises(ValueError, match="maximum of 30 days"):
        deadline_for({"spec": {"timeout": "99999999999h"}}, T0)


def test_timeouts_up_to_the_maximum_are_accepted() -> None:
    assert timeout_of("720h", timedelta(0)) == MAX_TIMEOUT
    assert deadline_for({"spec": {"timeout": "720h"}}, T0) == T0 + MAX_TIMEOUT


def test_durations_never_overflow() -> None:
    with pytest.raises(ValueError, match="longer than"):
        parse_duration("9" * 30 + "h")
    assert parse_duration("1000h") == timedelta(hours=1000)


def test_a_workflow_without_stages_can_never_run() -> None:
    assert scope_problems([]) == [("spec.workflowRef", "the workflow has no stages")]


def test_unknown_start_and_end_stages_are_named() -> None:
    assert scope_problems(CHAIN, ["a", "nope"], ["zz"]) == [
        ("spec.startStages[1]", 'unknown stage "nope"'),
        ("spec.endStages[0]", 'unknown stage "zz"'),
    ]


def test_start_and_end_stages_that_select_nothing_are_refused() -> None:
    [(field, message)] = scope_problems(CHAIN, ["c"], ["a"])
    assert field == "spec.endStages"
    assert "no stage" in message


def test_known_start_and_end_stages_are_fine() -> None:
    assert scope_problems(CHAIN) == []
    assert scope_problems(CHAIN, ["b"], ["c"]) == []
