"""The timeline (Gantt) of a run: one bar per stage from its start to its finish, placed on
a common time axis in percent of the run's span, with tick marks at round intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cyclone.ui.durations import stage_window
from cyclone.ui.templating import format_seconds, parse_time

MIN_WIDTH = 0.3
"""Percent: a stage of a few milliseconds in a long run still shows as a sliver."""
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
              43200, 86400)
MAX_TICKS = 8
LABEL_ROOM = 85.0
"""Percent: a bar ending after this has no room for its duration on its right."""


@dataclass(frozen=True)
class Bar:
    stage: str
    phase: str
    start: float | None
    """Seconds from the timeline's origin; None for a stage that has not started."""
    end: float | None
    """Seconds from the origin; for a stage still running, now."""
    left: float
    """Percent of the span."""
    width: float
    running: bool
    duration: str
    label: str = "after"
    """Where the duration text goes: `after` the bar, `inside` its end, or `before` it."""


@dataclass(frozen=True)
class Tick:
    left: float
    label: str


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    span: float
    """Seconds the axis covers (at least one)."""
    origin: datetime | None
    ticks: list[Tick]


def label_side(left: float, width: float) -> str:
    """After the bar while there is room on its right, else inside a wide bar, else before
    a narrow one."""
    if left + width <= LABEL_ROOM:
        return "after"
    return "inside" if width >= 100.0 - LABEL_ROOM else "before"


def tick_step(span: float) -> int:
    """The smallest round interval that puts at most `MAX_TICKS` ticks on `span` seconds."""
    for step in TICK_STEPS:
        if span / step <= MAX_TICKS:
            return step
    return TICK_STEPS[-1] * max(1, int(span / TICK_STEPS[-1] / MAX_TICKS) + 1)


def _tick_label(seconds: int) -> str:
    if seconds == 0:
        return "0"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs else ""]
    return "".join(parts)


def build_timeline(run: dict, order: Sequence[str] = (), now: datetime | None = None
                   ) -> Timeline:
    """The bars of `run`'s stages, earliest start first (ties and stages not started yet in
    `order`, then by name); `order` also names stages the status does not list yet."""
    now = now or datetime.now(UTC)
    status = run.get("status") or {}
    stages: dict = status.get("stages") or {}
    names = list(dict.fromkeys([*order, *sorted(stages)]))
    position = {name: i for i, name in enumerate(names)}
    times = {name: stage_window(stages.get(name), now) or (None, None, False)
             for name in names}
    starts = [t[0] for t in times.values() if t[0] is not None]
    run_start = parse_time((status.get("overall") or {}).get("startTime"))
    origin = min([*starts, *([run_start] if run_start else [])], default=None)
    if origin is None:
        bars = [Bar(name, _phase(stages, name), None, None, 0.0, 0.0, False, "")
                for name in names]
        return Timeline(bars, 1.0, None, [Tick(0.0, "0")])
    ends = [t[1] for t in times.values() if t[1] is not None]
    span = max(1.0, max(((e - origin).total_seconds() for e in ends), default=0.0))
    bars = []
    for name in names:
        started, ended, running = times[name]
        if started is None or ended is None:
            bars.append(Bar(name, _phase(stages, name), None, None, 0.0, 0.0, False, ""))
            continue
        start = (started - origin).total_seconds()
        end = (ended - origin).total_seconds()
        width = min(100.0, max(MIN_WIDTH, 100.0 * (end - start) / span))
        left = min(100.0 * start / span, 100.0 - width)
        bars.append(Bar(name, _phase(stages, name), start, end, round(left, 3),
                        round(width, 3), running, format_seconds(end - start),
                        label_side(left, width)))
    bars.sort(key=lambda b: (b.start is None, b.start or 0.0, position[b.stage]))
    step = tick_step(span)
    ticks = [Tick(round(100.0 * s / span, 3), _tick_label(s))
             for s in range(0, int(span) + 1, step)]
    return Timeline(bars, span, origin, ticks)


def _phase(stages: dict, name: str) -> str:
    return ((stages.get(name) or {}).get("status") or {}).get("phase") or "Pending"
