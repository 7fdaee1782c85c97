"""Formats Cyclone accepts in names, durations and cron schedules."""

from __future__ import annotations

import re
from datetime import timedelta

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|min|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_DURATION = timedelta(days=3660)
"""Longer durations are refused outright (ten years; callers bound theirs further)."""
MAX_TIMEOUT = timedelta(days=30)
"""The longest run, trigger or delegation ``timeout``."""


def parse_duration(text: str, maximum: timedelta = MAX_DURATION) -> timedelta:
    """A Cyclone duration: ``<number><unit>`` parts, units h, m/min, s, ms, any case.

    ``1h30m``, ``30min``, ``1H30MIN``, ``45s`` and ``2h`` are durations; ``1h:30m``,
    ``abc``, ``-1h`` and the empty string are not; neither is anything over ``maximum``
    (at most ``MAX_DURATION``, so no duration overflows a date computed from it).
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected a string such as 1h30m")
    value = text.strip()
    if value.startswith("-"):
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        position = match.end()
    if not value or position != len(value):
        raise ValueError(
            f"invalid duration {text!r}: expected <number><unit> parts with units "
            "h, m or min, s, ms (e.g. 1h30m, 30min, 45s)"
        )
    limit = min(maximum, MAX_DURATION)
    if not total <= limit.total_seconds():
        raise ValueError(f"invalid duration {text!r}: longer than the maximum of "
                         f"{_describe(limit)}")
    return timedelta(seconds=total)


def _describe(span: timedelta) -> str:
    if span.days and span == timedelta(days=span.days):
        return f"{span.days} days"
    return f"{span.total_seconds():g} seconds"


def is_dns1123_label(name: str) -> bool:
    return len(name) <= DNS1123_LABEL_MAX and bool(_DNS1123_LABEL.match(name))


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= DNS1123_SUBDOMAIN_MAX and bool(_DNS1123_SUBDOMAIN.match(name))


def dns1123_label_error(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 label, or None when it is one."""
    if is_dns1123_label(name):
        return None
    if len(name) > DNS1123_LABEL_MAX:
        return f"{name!r} is longer than {DNS1123_LABEL_MAX} characters"
    return (
        f"{name!r} is not a DNS-1123 label: lower-case letters, digits and '-', "
        "starting and ending with a letter or digit"
    )


def dns1123_subdomain_error(name: str) -> str | None:
    if is_dns1123_subdomain(name):
        return None
    if len(name) > DNS1123_SUBDOMAIN_MAX:
        return f"{name!r} is longer than {DNS1123_SUBDOMAIN_MAX} characters"
    return (
        f"{name!r} is not a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
        "starting and ending with a letter or digit"
    )


def cron_schedule_error(schedule: str) -> str | None:
    """Why a schedule is not 5 cron fields (or 6, seconds first), or None when it is."""
    fields = schedule.split()
    if len(fields) not in (5, 6):
        return f"{schedule!r} must have 5 fields (or 6 with seconds first), has {len(fields)}"
    from croniter import croniter  # imported here: the CLI imports this module at start

    minute_fields = " ".join(fields[-5:])
    if not croniter.is_valid(minute_fields):
        return f"{schedule!r} is not a valid cron schedule"
    if len(fields) == 6 and not croniter.is_valid(f"{fields[0]} * * * *"):
        return f"{schedule!r} has an invalid seconds field {fields[0]!r}"
    return None
