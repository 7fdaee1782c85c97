"""Two runs of a workflow side by side: each stage's phase and duration with the delta,
the outputs that differ, and the parameters and global variables that differ.

Pure: runs in, a `Comparison` out; `now` fixes the elapsed time of running stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cyclone.ui.dag_view import stage_phase
from cyclone.ui.durations import run_seconds, stage_seconds
from cyclone.ui.insights import run_name, stage_statuses
from cyclone.ui.run_summary import run_phase
from cyclone.ui.templating import format_seconds, parse_time
from cyclone.ui.triage import Change, parameter_changes, variable_changes

SAME_SECONDS = 1.0
SAME_SHARE = 0.1
"""A duration that moved by a second or less (times are stored to the second), or by less
than a tenth, is the same."""


def trend(before: float | None, after: float | None) -> str:
    """`slower`, `faster` or `same` from one duration to the other; empty when one is
    missing."""
    if before is None or after is None:
        return ""
    delta = after - before
    if abs(delta) <= SAME_SECONDS or abs(delta) < SAME_SHARE * before:
        return "same"
    return "slower" if delta > 0 else "faster"


def delta_text(before: float | None, after: float | None) -> str:
    """`+12s`, `-1m3s`, `±0.0s`; empty when either duration is missing."""
    if before is None or after is None:
        return ""
    delta = after - before
    if abs(delta) < 0.05:
        return "\N{PLUS-MINUS SIGN}0.0s"
    return ("+" if delta > 0 else "-") + format_seconds(abs(delta))


@dataclass(frozen=True)
class StageRow:
    stage: str
    phase_a: str | None
    """None: the stage is not in run A."""
    phase_b: str | None
    seconds_a: float | None
    seconds_b: float | None
    outputs: list[Change] = field(default_factory=list)

    @property
    def only_in(self) -> str:
        """`a` or `b` when the stage ran in one run only, else empty."""
        if self.phase_a is None:
            return "b"
        if self.phase_b is None:
            return "a"
        return ""

    @property
    def delta(self) -> str:
        return delta_text(self.seconds_a, self.seconds_b)

    @property
    def trend(self) -> str:
        return trend(self.seconds_a, self.seconds_b)

    @property
    def phase_changed(self) -> bool:
        return self.phase_a != self.phase_b


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    phase_a: str | None
    phase_b: str | None
    seconds_a: float | None
    seconds_b: float | None
    stages: list[StageRow]
    parameters: list[Change]
    variables: list[Change]

    @property
    def delta(self) -> str:
        return delta_text(self.seconds_a, self.seconds_b)

    @property
    def trend(self) -> str:
        return trend(self.seconds_a, self.seconds_b)

    @property
    def output_changes(self) -> list[StageRow]:
        return [row for row in self.stages if row.outputs]


def outputs_of(entry: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(item.get("key")): "" if item.get("value") is None else str(item["value"])
            for item in (entry or {}).get("outputs") or [] if isinstance(item, dict)}


def output_changes(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[Change]:
    old, new = outputs_of(a), outputs_of(b)
    return [Change(key, old.get(key), new.get(key))
            for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]


def _order(a: Mapping[str, dict], b: Mapping[str, dict]) -> list[str]:
    """Stages by when they first started in either run; never-started ones last, by name."""
    late = datetime.max.replace(tzinfo=UTC)

    def key(name: str) -> tuple[datetime, str]:
        starts = [parse_time(((side.get(name) or {}).get("status") or {}).get("startTime"))
                  for side in (a, b)]
        known = [s for s in starts if s is not None]
        return (min(known) if known else late, name)
    return sorted(a.keys() | b.keys(), key=key)


def compare(a: Mapping[str, Any], b: Mapping[str, Any], *, now: datetime | None = None
            ) -> Comparison:
    """Run `a` (the reference) against run `b`: deltas are b - a."""
    now = now or datetime.now(UTC)
    stages_a, stages_b = stage_statuses(a), stage_statuses(b)
    rows = []
    for name in _order(stages_a, stages_b):
        entry_a, entry_b = stages_a.get(name), stages_b.get(name)
        rows.append(StageRow(
            name,
            stage_phase(entry_a) if entry_a is not None else None,
            stage_phase(entry_b) if entry_b is not None else None,
            stage_seconds(entry_a, now) if entry_a is not None else None,
            stage_seconds(entry_b, now) if entry_b is not None else None,
            output_changes(entry_a, entry_b) if entry_a and entry_b else []))
    return Comparison(run_name(a), run_name(b), run_phase(a), run_phase(b),
                      run_seconds(a, now), run_seconds(b, now), rows,
                      parameter_changes(a, b), variable_changes(a, b))
