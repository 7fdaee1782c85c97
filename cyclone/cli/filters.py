"""List filters of `cyclone get`: `--phase`, `--since DURATION`, `-l SELECTOR`.

The label selector grammar is Kubernetes' (`k=v`, `k==v`, `k!=v`, `k in (a,b)`,
`k notin (a,b)`, `k`, `!k`), evaluated here because the CLI imports only `cyclone.api`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cyclone.cli.client import CliError
from cyclone.cli.kinds import parse_time

_DURATION = re.compile(r"(\d+)(w|d|h|m|s)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_SET = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s+\((.*)\)$")


def parse_since(text: str) -> timedelta:
    """`90s`, `15m`, `1h30m`, `2d`, `1w` as a timedelta."""
    value = text.strip().lower()
    if not value or _DURATION.sub("", value) or not _DURATION.search(value):
        raise CliError(f"--since {text!r} is not a duration such as 30m, 1h or 2d")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(value)))


def _split_terms(text: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term.strip() for term in terms]


def _requirement(term: str, selector: str) -> Callable[[dict], bool]:
    set_match = _SET.match(term)
    if set_match:
        key, operator = set_match[1], set_match[2]
        values = {v.strip() for v in set_match[3].split(",") if v.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for operator in ("!=", "==", "="):
        key, found, value = term.partition(operator)
        if found:
            key, value = key.strip(), value.strip()
            if not key or any(c in value for c in "=!()"):
                break
            if operator == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    else:
        if term.startswith("!") and re.fullmatch(r"[^\s!=(),]+", term[1:]):
            return lambda labels: term[1:] not in labels
        if re.fullmatch(r"[^\s!=(),]+", term):
            return lambda labels: term in labels
    raise CliError(f"label selector {selector!r}: cannot parse {term!r}")


def label_matcher(selector: str) -> Callable[[dict], bool]:
    """Whether an object's labels satisfy every requirement of the selector."""
    terms = _split_terms(selector)
    if not any(terms):
        raise CliError("label selector is empty")
    requirements = [_requirement(term, selector) for term in terms if term]

    def matches(obj: dict) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


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
