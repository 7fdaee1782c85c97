"""Retries of a failed stage attempt: whether there is another one, and when.

Attempts count from 1. A stage with ``retries = n`` gets at most ``n + 1`` attempts. The
wait before attempt ``k + 1`` is ``backoff * 2**(k - 1)``, capped at ``max_backoff``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cyclone.api.formats import parse_duration

DEFAULT_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(minutes=10)


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    next_attempt: int | None = None
    not_before: datetime | None = None


def should_retry(attempt: int, retries: int | None) -> bool:
    """Whether a failed ``attempt`` (1-based) is followed by another."""
    return attempt >= 1 and attempt <= max(retries or 0, 0)


def retry_backoff(
    attempt: int,
    backoff: timedelta | None = None,
    max_backoff: timedelta = MAX_BACKOFF,
) -> timedelta:
    """The wait after failed ``attempt``: doubling from ``backoff`` per attempt, capped."""
    base = DEFAULT_BACKOFF if backoff is None else backoff
    if base <= timedelta(0):
        return timedelta(0)
    exponent = max(attempt - 1, 0)
    if exponent >= 40:
        return max_backoff
    return min(base * (2**exponent), max_backoff)


def decide_retry(
    attempt: int,
    retries: int | None,
    failed_at: datetime,
    backoff: timedelta | None = None,
    max_backoff: timedelta = MAX_BACKOFF,
) -> RetryDecision:
    """Whether to retry after failed ``attempt``, with the attempt number and start time."""
    if not should_retry(attempt, retries):
        return RetryDecision(retry=False)
    wait = retry_backoff(attempt, backoff, max_backoff)
    return RetryDecision(retry=True, next_attempt=attempt + 1, not_before=failed_at + wait)


def stage_retry_decision(
    stage: Any, attempt: int, failed_at: datetime, max_backoff: timedelta = MAX_BACKOFF
) -> RetryDecision:
    """``decide_retry`` with the Stage's ``spec.retries`` and ``spec.retryBackoff``."""
    spec = stage.get("spec", {}) if isinstance(stage, dict) else stage.spec
    if isinstance(spec, dict):
        retries, backoff_text = spec.get("retries"), spec.get("retryBackoff")
    else:
        retries, backoff_text = spec.retries, spec.retry_backoff
    backoff = parse_duration(backoff_text) if backoff_text else None
    return decide_retry(attempt, retries, failed_at, backoff, max_backoff)
