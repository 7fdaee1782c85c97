"""The run-history sparkline of a workflow: one bar per run, height by duration, coloured by
phase. Pure geometry; the template draws the bars as SVG rectangles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RunPoint:
    """One run as the sparkline needs it."""

    name: str
    phase: str
    seconds: float | None
    """None when the run has not started."""


@dataclass(frozen=True)
class Bar:
    name: str
    phase: str
    seconds: float | None
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Sparkline:
    width: float
    height: float
    bars: tuple[Bar, ...]
    longest: float
    """Seconds of the longest run drawn (0 when none has a duration)."""


def sparkline(points: Sequence[RunPoint], *, width: float = 300, height: float = 48,
              slots: int = 30, gap: float = 2, floor: float = 2) -> Sparkline:
    """Bars for the last `slots` of `points` (oldest first), the newest at the right edge.

    A bar's height is its run's share of the longest duration; a run without a duration
    (not started) or a very short one still gets `floor` pixels so it can be seen and
    clicked. Slots are fixed, so a bar keeps its width whatever the number of runs."""
    shown = list(points)[-slots:] if slots > 0 else []
    slot = width / max(slots, 1)
    bar_width = max(slot - gap, 1.0)
    longest = max((p.seconds for p in shown if p.seconds is not None and p.seconds > 0),
                  default=0.0)
    start = width - slot * len(shown)
    bars = []
    for index, point in enumerate(shown):
        share = (point.seconds or 0) / longest if longest else 0.0
        bar_height = max(floor, round(share * height, 2))
        bars.append(Bar(point.name, point.phase or "Pending", point.seconds,
                        round(start + index * slot, 2), round(height - bar_height, 2),
                        round(bar_width, 2), bar_height))
    return Sparkline(width, height, tuple(bars), longest)
