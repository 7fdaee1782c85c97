"""Table columns of WorkflowTriggers: the next fire time of a cron trigger and its count."""

from __future__ import annotations

from datetime import UTC, datetime

from cyclone.api.formats import cron_schedule_error


def next_fire_time(trigger: dict, now: datetime | None = None) -> datetime | None:
    """When a cron trigger fires next (UTC); None for other, disabled or invalid ones."""
    spec = trigger.get("spec") or {}
    cron = spec.get("cron") or {}
    schedule = cron.get("schedule") or ""
    if spec.get("type") != "Cron" or spec.get("disabled") or cron_schedule_error(schedule):
        return None
    import zoneinfo

    from croniter import croniter

    try:
        zone = zoneinfo.ZoneInfo(cron["timezone"]) if cron.get("timezone") else UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    start = (now or datetime.now(UTC)).astimezone(zone)
    fields = schedule.split()
    moment = croniter(" ".join(fields), start,
                      second_at_beginning=len(fields) == 6).get_next(datetime)
    return moment.astimezone(UTC)


def next_fire_column(trigger: dict) -> str:
    moment = next_fire_time(trigger)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def count_column(trigger: dict) -> str:
    return str(int(((trigger.get("status") or {}).get("count")) or 0))
