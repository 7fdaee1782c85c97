"""Run and delegation deadlines, as absolute times computed once and stored.

A run's deadline is ``now + spec.timeout`` (default one hour, the caller may choose
another) when the run starts; the controller stores it in ``status.deadline`` so a restart
keeps it. A run is expired once ``now >= deadline``. A timeout longer than
``MAX_TIMEOUT`` (30 days) is refused like a malformed one, so a run created directly in
the cluster with an absurd timeout fails instead of overflowing the deadline.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cyclone.api.formats import MAX_TIMEOUT, parse_duration
from cyclone.engine.core.timefmt import parse_rfc3339, rfc3339

DEFAULT_RUN_TIMEOUT = timedelta(hours=1)
DEFAULT_DELEGATION_TIMEOUT = timedelta(hours=1)


def _spec(obj: Any) -> Any:
    return obj.get("spec") if isinstance(obj, dict) else getattr(obj, "spec", None)


def _field(obj: Any, name: str, alias: str | None = None) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(alias or name)
    return getattr(obj, name, None)


def timeout_of(text: str | None, default: timedelta) -> timedelta:
    """A duration string (``1h30m``, ``30min``…), or ``default`` when empty.

    Raises ``ValueError`` for a malformed duration or one over ``MAX_TIMEOUT`` (the API
    rejects those at admission).
    """
    if text is None or not str(text).strip():
        return default
    return parse_duration(str(text), MAX_TIMEOUT)


def run_timeout(run: Any, default: timedelta = DEFAULT_RUN_TIMEOUT) -> timedelta:
    """The run's ``spec.timeout`` (a model or an object dict), or ``default``."""
    return timeout_of(_field(_spec(run), "timeout"), default)


def deadline_for(
    run: Any, now: datetime, default: timedelta = DEFAULT_RUN_TIMEOUT
) -> datetime:
    """The absolute time a run starting ``now`` times out."""
    return now + run_timeout(run, default)


def deadline_text(deadline: datetime) -> str:
    """The deadline as stored in ``status.deadline`` (RFC 3339)."""
    return rfc3339(deadline)


def stored_deadline(run: Any) -> datetime | None:
    """``status.deadline`` of a run, or None when it has none yet."""
    status = run.get("status") if isinstance(run, dict) else getattr(run, "status", None)
    value = _field(status, "deadline")
    return parse_rfc3339(value) if value else None


def is_expired(deadline: datetime | str | None, now: datetime) -> bool:
    """Whether ``now`` is at or past ``deadline``; no deadline never expires."""
    if deadline is None:
        return False
    return now >= parse_rfc3339(deadline)


def time_left(deadline: datetime | str | None, now: datetime) -> timedelta | None:
    """How long until ``deadline`` (zero once passed), e.g. for a requeue; None without one."""
    if deadline is None:
        return None
    return max(parse_rfc3339(deadline) - now, timedelta(0))


def delegation_deadline(
    stage: Any, now: datetime, default: timedelta = DEFAULT_DELEGATION_TIMEOUT
) -> datetime:
    """When a delegation stage started ``now`` stops waiting for its report."""
    delegation = _field(_spec(stage), "delegation")
    return now + timeout_of(_field(delegation, "timeout"), default)
