from datetime import UTC, datetime, timedelta

import pytest

from cyclone.api.workflowrun import WorkflowRunStatus
from cyclone.engine.core.timeouts import (
    DEFAULT_RUN_TIMEOUT,
    deadline_for,
    deadline_text,
    delegation_deadline,
    is_expired,
    run_timeout,
    stored_deadline,
    time_left,
)

from .fixtures import run, stage

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (None, DEFAULT_RUN_TIMEOUT),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("30min", timedelta(minutes=30)),
        ("1H30MIN", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_run_timeout(timeout, expected):
    r = run(timeout=timeout) if timeout else run()
    assert run_timeout(r) == expected
    assert run_timeout(r.to_object()) == expected


def test_default_timeout_is_configurable():
    assert run_timeout(run(), default=timedelta(minutes=5)) == timedelta(minutes=5)


def test_malformed_timeout_is_an_error():
    with pytest.raises(ValueError):
        run_timeout(run(timeout="1h:30m"))


def test_deadline_is_absolute_and_stored_as_rfc3339():
    deadline = deadline_for(run(timeout="2h"), T0)
    assert deadline == T0 + timedelta(hours=2)
    assert deadline_text(deadline) == "2026-05-01T14:00:00Z"
    r = run()
    r.status = WorkflowRunStatus(deadline="2026-05-01T14:00:00Z")
    assert stored_deadline(r) == deadline
    assert stored_deadline(run()) is None
    assert stored_deadline({"status": {"deadline": "2026-05-01T14:00:00Z"}}) == deadline


@pytest.mark.parametrize(
    ("now", "expired"),
    [(T0 - timedelta(seconds=1), False), (T0, True), (T0 + timedelta(hours=1), True)],
)
def test_is_expired(now, expired):
    assert is_expired(T0, now) is expired
    assert is_expired("2026-05-01T12:00:00Z", now) is expired


def test_no_deadline_never_expires():
    assert not is_expired(None, T0)
    assert time_left(None, T0) is None


def test_time_left_is_never_negative():
    assert time_left(T0 + timedelta(minutes=2), T0) == timedelta(minutes=2)
    assert time_left(T0, T0 + timedelta(minutes=2)) == timedelta(0)


def test_delegation_deadline():
    s = stage(pod={}, delegation={"url": "http://x", "timeout": "10m"})
    s.spec.pod = None
    assert delegation_deadline(s, T0) == T0 + timedelta(minutes=10)
    plain = {"spec": {"delegation": {"url": "http://x"}}}
    assert delegation_deadline(plain, T0, timedelta(minutes=3)) == T0 + timedelta(minutes=3)


def test_a_run_without_timeout_uses_the_callers_default():
    assert deadline_for(run(), T0, timedelta(hours=2)) == T0 + timedelta(hours=2)


def test_a_blank_timeout_means_the_default():
    assert deadline_for({"spec": {"timeout": "   "}}, T0) == T0 + DEFAULT_RUN_TIMEOUT
