"""How long a stage or a run took (or has taken so far), by one rule, so that a DAG node, a
table row, a timeline bar and a comparison always agree.

A stage's window starts at its `startTime`. A stage that ended (a terminal phase) ends at its
`lastTransitionTime`, or has no length when none is recorded; any other started stage
(running, or waiting again) runs on until `now`. A run's window is its overall `startTime`
to its `completionTime` (else the overall `lastTransitionTime`) once it ended, to `now` while
it goes on. An end before the start counts as the start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cyclone.engine.core.phases import TERMINAL_PHASES
from cyclone.ui.templating import parse_time


def _status(entry: Mapping[str, Any] | None) -> Mapping[str, Any]:
    status = (entry or {}).get("status") if isinstance(entry, Mapping) else None
    return status if isinstance(status, Mapping) else {}


def stage_window(entry: Mapping[str, Any] | None, now: datetime
                 ) -> tuple[datetime, datetime, bool] | None:
    """(start, end, still going) of a run status's entry for one stage; None before it
    started."""
    status = _status(entry)
    started = parse_time(status.get("startTime"))
    if started is None:
        return None
    if status.get("phase") in TERMINAL_PHASES:
        ended = parse_time(status.get("lastTransitionTime")) or started
        return started, max(ended, started), False
    return started, max(now, started), True


def stage_seconds(entry: Mapping[str, Any] | None, now: datetime | None = None
                  ) -> float | None:
    """A stage's duration (elapsed so far while it goes on); None before it started."""
    window = stage_window(entry, now or datetime.now(UTC))
    return None if window is None else (window[1] - window[0]).total_seconds()


def run_start(run: Mapping[str, Any]) -> str | None:
    return ((run.get("status") or {}).get("overall") or {}).get("startTime")


def run_end(run: Mapping[str, Any]) -> str | None:
    """When a finished run ended; None while it goes on."""
    status = run.get("status") or {}
    overall = status.get("overall") or {}
    if overall.get("phase") not in TERMINAL_PHASES:
        return None
    return status.get("completionTime") or overall.get("lastTransitionTime")


def run_seconds(run: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """A run's duration (elapsed so far while it goes on); None before it started."""
    began = parse_time(run_start(run))
    if began is None:
        return None
    ended = parse_time(run_end(run)) or now or datetime.now(UTC)
    return (max(ended, began) - began).total_seconds()
