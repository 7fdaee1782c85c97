"""List filters of `cyclone get`: `--phase`, `--since DURATION`, `-l SELECTOR`.

The label selector grammar is Kubernetes' (`k=v`, `k==v`, `k!=v`, `k in (a,b)`,
`k notin (a,b)`, `k`, `!k`), parsed by `cyclone.api.selectors` as the clusters parse it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cyclone.cli.errors import CliError
from cyclone.cli.kinds import parse_time

_DURATION = re.compile(r"(\d+)(w|d|h|m|s)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_since(text: str) -> timedelta:
    """`90s`, `15m`, `1h30m`, `2d`, `1w` as a timedelta."""
    value = text.strip().lower()
    if not value or _DURATION.sub("", value) or not _DURATION.search(value):
        raise CliError(f"--since {text!r} is not a duration such as 30m, 1h or 2d")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(value)))


def label_matcher(selector: str) -> Callable[[dict], bool]:
    """Whether an object's labels satisfy every requirement of the selector."""
    if not selector.strip():
        raise CliError("label selector is empty")
    from cyclone.api.selectors import SelectorError, parse_label_selector

    try:
        parsed = parse_label_selector(selector)
    except SelectorError as exc:
        raise CliError(f"label selector {selector!r}: {exc}") from None
    return lambda obj: parsed.matches((obj.get("metadata") or {}).get("labels"))


def created_at(obj: dict) -> datetime | None:
    return parse_time((obj.get("metadata") or {}).get("creationTimestamp"))


def filter_objects(objects: list[dict], *, selector: str | None = None,
                   since: str | None = None, phase: str | None = None,
                   phase_of: Callable[[dict], str] | None = None,
                   phases: tuple[str, ...] = (), now: datetime | None = None) -> list[dict]:
    """The objects that pass every filter given."""
    kept = objects
    if selector:
        matches = label_matcher(selector)
        kept = [obj for obj in kept if matches(obj)]
    if since:
        oldest = (now or datetime.now(UTC)) - parse_since(since)
        kept = [obj for obj in kept if (created_at(obj) or oldest) >= oldest]
    if phase:
        if phase_of is None:
            raise CliError("--phase applies only to workflowruns")
        wanted = {p.strip().lower() for p in phase.split(",") if p.strip()}
        unknown = sorted(wanted - {p.lower() for p in phases})
        if unknown:
            raise CliError(f"unknown phase {unknown[0]!r} (one of: {', '.join(phases)})")
        kept = [obj for obj in kept if phase_of(obj).lower() in wanted]
    return kept
