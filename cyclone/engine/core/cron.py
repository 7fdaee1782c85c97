"""Cron schedules of WorkflowTriggers: when to fire, and what a firing does.

Pure functions over plain data. A schedule has 5 fields, or 6 with seconds first, and is
read in the trigger's time zone (UTC by default). The firing rules follow the Kubernetes
CronJob controller: only the most recent scheduled time that has not fired yet is
considered, so an engine that was down for many ticks fires once, not once per tick; a
firing later than ``startingDeadlineSeconds`` after its time is skipped.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from croniter import croniter

from cyclone.engine.core.phases import is_terminal


class CronError(ValueError):
    """A schedule or time zone that cannot be used."""


class ConcurrencyPolicy(StrEnum):
    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class FiringAction(StrEnum):
    WAIT = "Wait"
    """Nothing is due; look again at ``next_time``."""
    FIRE = "Fire"
    """Create the run of ``scheduled_time``."""
    MISSED = "Missed"
    """The most recent time is past its starting deadline; it is skipped."""
    FORBIDDEN = "Forbidden"
    """An earlier run is unfinished and the policy is Forbid; try again when it ends."""


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: croniter expression, whether it has seconds, and its zone."""

    expression: str
    with_seconds: bool
    zone: zoneinfo.ZoneInfo | None

    def _iterator(self, start: datetime) -> croniter:
        local = start.astimezone(self.zone or UTC)
        return croniter(self.expression, local, second_at_beginning=self.with_seconds)

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled time strictly after ``moment`` (aware, UTC)."""
        return self._iterator(moment).get_next(datetime).astimezone(UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last scheduled time at or before ``moment`` (aware, UTC)."""
        step = timedelta(seconds=1) if self.with_seconds else timedelta(minutes=1)
        upper = _floor(moment, self.with_seconds) + step
        return self._iterator(upper).get_prev(datetime).astimezone(UTC)


def _floor(moment: datetime, with_seconds: bool) -> datetime:
    moment = moment.replace(microsecond=0)
    return moment if with_seconds else moment.replace(second=0)


def parse_schedule(schedule: str, timezone: str | None = None) -> CronSchedule:
    """A schedule of 5 fields, or 6 with seconds first, in an IANA zone (None: UTC)."""
    fields = schedule.split()
    if len(fields) not in (5, 6):
        raise CronError(f"{schedule!r} must have 5 fields (or 6 with seconds first)")
    expression = " ".join(fields)
    if not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
        raise CronError(f"{schedule!r} is not a valid cron schedule")
    zone = None
    if timezone:
        try:
            zone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise CronError(f"unknown time zone {timezone!r}") from exc
    return CronSchedule(expression, len(fields) == 6, zone)


@dataclass(frozen=True)
class FiringDecision:
    action: FiringAction
    next_time: datetime
    """The next scheduled time after now: when to look again."""
    scheduled_time: datetime | None = None
    """The time being fired (FIRE) or given up on (MISSED, FORBIDDEN)."""
    replace: list[str] = field(default_factory=list)
    """Runs to stop before firing (policy Replace)."""


def decide_firing(
    schedule: CronSchedule,
    now: datetime,
    *,
    since: datetime,
    starting_deadline_seconds: int | None = None,
    concurrency_policy: str | None = None,
    active_runs: list[str] | None = None,
) -> FiringDecision:
    """What a trigger does at ``now``.

    ``since`` is the last time it fired (or its creation time): only a scheduled time
    after it is due. ``active_runs`` are the names of its unfinished runs.
    """
    next_time = schedule.next_after(now)
    latest = schedule.latest_at_or_before(now)
    if latest <= since:
        return FiringDecision(FiringAction.WAIT, next_time)
    if starting_deadline_seconds is not None and (
        now - latest > timedelta(seconds=starting_deadline_seconds)
    ):
        return FiringDecision(FiringAction.MISSED, next_time, latest)
    active = list(active_runs or [])
    policy = ConcurrencyPolicy(concurrency_policy or ConcurrencyPolicy.ALLOW)
    if active and policy == ConcurrencyPolicy.FORBID:
        return FiringDecision(FiringAction.FORBIDDEN, next_time, latest)
    replace = active if policy == ConcurrencyPolicy.REPLACE else []
    return FiringDecision(FiringAction.FIRE, next_time, latest, replace)


def unfinished_runs(runs: list[dict]) -> list[str]:
    """Names of the runs whose overall phase is not terminal (and not stopped)."""
    names = []
    for run in runs:
        phase = ((run.get("status") or {}).get("overall") or {}).get("phase")
        if is_terminal(phase) or (run.get("spec") or {}).get("stopped"):
            continue
        names.append(run["metadata"]["name"])
    return sorted(names)


def cron_run_name(trigger: str, scheduled_time: datetime) -> str:
    """``{trigger}-{unix seconds of the scheduled time}``: one name per firing."""
    suffix = str(int(scheduled_time.timestamp()))
    return f"{trigger[: 62 - len(suffix)].rstrip('-')}-{suffix}"
