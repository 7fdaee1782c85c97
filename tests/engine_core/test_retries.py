from datetime import UTC, datetime, timedelta

import pytest

from cyclone.engine.core.retries import (
    MAX_BACKOFF,
    RetryDecision,
    decide_retry,
    retry_backoff,
    should_retry,
    stage_retry_decision,
)

from .fixtures import stage

T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "retries", "expected"),
    [(1, 0, False), (1, None, False), (1, 1, True), (2, 1, False), (2, 3, True), (3, 3, True),
     (4, 3, False), (0, 3, False), (1, -1, False)],
)
def test_should_retry(attempt, retries, expected):
    assert should_retry(attempt, retries) is expected


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, timedelta(seconds=5)), (2, timedelta(seconds=10)), (3, timedelta(seconds=20)),
     (10, MAX_BACKOFF), (100, MAX_BACKOFF)],
)
def test_backoff_doubles_and_is_capped(attempt, expected):
    assert retry_backoff(attempt, timedelta(seconds=5)) == expected


def test_backoff_defaults_and_zero():
    assert retry_backoff(1) == timedelta(seconds=10)
    assert retry_backoff(3, timedelta(0)) == timedelta(0)
    assert retry_backoff(5, timedelta(seconds=1), timedelta(seconds=4)) == timedelta(seconds=4)


def test_decide_retry_gives_next_attempt_and_time():
    decision = decide_retry(2, 3, T0, timedelta(seconds=1))
    assert decision.retry and decision.next_attempt == 3
    assert decision.not_before == T0 + timedelta(seconds=2)
    assert not decide_retry(4, 3, T0).retry


def test_stage_retry_decision_reads_the_stage_spec():
    s = stage(retries=2, retryBackoff="30s")
    decision = stage_retry_decision(s, 1, T0)
    assert decision.retry and decision.not_before == T0 + timedelta(seconds=30)
    assert not stage_retry_decision(s, 3, T0).retry
    assert not stage_retry_decision(stage(), 1, T0).retry
    as_dict = stage_retry_decision({"spec": {"retries": 1, "retryBackoff": "1m"}}, 1, T0)
    assert as_dict.not_before == T0 + timedelta(minutes=1)


def test_no_retry_left_is_a_plain_refusal():
    assert decide_retry(2, 1, T0) == RetryDecision(retry=False)


def test_the_callers_backoff_cap_bounds_a_stage_retry():
    s = stage(retries=9, retryBackoff="10s")
    decision = stage_retry_decision(s, 6, T0, max_backoff=timedelta(seconds=45))
    assert decision.not_before == T0 + timedelta(seconds=45)
    assert decide_retry(6, 9, T0, timedelta(seconds=10), timedelta(seconds=45)).not_before == (
        T0 + timedelta(seconds=45)
    )


def test_a_stage_without_spec_is_not_retried():
    assert stage_retry_decision({"metadata": {"name": "x"}}, 1, T0) == RetryDecision(retry=False)
