"""The overview's figures from run summaries, and its stacked bar chart as inline SVG.

Pure functions: no I/O, the current day is an argument.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from markupsafe import Markup

from cyclone.engine.core.phases import TERMINAL_PHASES
from cyclone.ui.run_listing import RunSummary
from cyclone.ui.run_summary import PAUSED

STACK_ORDER = ("Succeeded", "Failed", "Cancelled", "Running", PAUSED, "Waiting", "Pending")
"""Bottom to top in a day's bar."""


@dataclass(frozen=True)
class Day:
    day: date
    phases: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.phases.values())


def runs_per_day(runs: Iterable[RunSummary], today: date, days: int = 14) -> list[Day]:
    """Counts by phase for each of the `days` days ending `today` (UTC), empty days included."""
    first = today - timedelta(days=days - 1)
    counts: dict[date, Counter] = {first + timedelta(days=i): Counter() for i in range(days)}
    for run in runs:
        try:
            created = date.fromisoformat(run.created[:10])
        except ValueError:
            continue
        if created in counts:
            counts[created][run.phase] += 1
    return [Day(d, {p: c[p] for p in STACK_ORDER if c[p]}
                | {p: n for p, n in c.items() if p not in STACK_ORDER})
            for d, c in counts.items()]


def seconds_between(start: str, end: str) -> float | None:
    try:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    seconds = (ended - began).total_seconds()
    return seconds if seconds >= 0 else None


def run_seconds(run: RunSummary) -> float | None:
    """How long a finished run took (start, else creation, to finish)."""
    if not run.finished:
        return None
    return seconds_between(run.started or run.created, run.finished)


@dataclass(frozen=True)
class Figures:
    total: int
    finished: int
    succeeded: int
    failed: int
    running: int
    success_rate: float | None
    """Succeeded among finished runs, 0..1; None without a finished run."""
    median_seconds: float | None


def figures(runs: Iterable[RunSummary]) -> Figures:
    """Totals, success rate and median duration of `runs`."""
    phases: Counter = Counter()
    durations: list[float] = []
    for run in runs:
        phases[run.phase] += 1
        seconds = run_seconds(run)
        if seconds is not None:
            durations.append(seconds)
    finished = sum(phases[p] for p in TERMINAL_PHASES)
    return Figures(
        total=sum(phases.values()), finished=finished, succeeded=phases["Succeeded"],
        failed=phases["Failed"], running=phases["Running"] + phases[PAUSED] + phases["Waiting"],
        success_rate=phases["Succeeded"] / finished if finished else None,
        median_seconds=statistics.median(durations) if durations else None)


def stacked_bars(days: list[Day], *, width: int = 700, height: int = 180,
                 label: str = "Runs per day by phase") -> Markup:
    """An inline `<svg>` of one bar per day, its phases stacked (`class="bar phase-x"`),
    each segment titled with its count; day labels under the bars."""
    top_pad, bottom_pad, left_pad = 8, 22, 28
    plot_h = height - top_pad - bottom_pad
    peak = max((d.total for d in days), default=0)
    scale_max = max(peak, 1)
    slot = (width - left_pad) / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts = [Markup('<svg class="chart stacked-bars" viewBox="0 0 {} {}" width="100%" '
                    'role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">'
                    ).format(width, height, label)]
    parts.append(Markup('<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>').format(
        left_pad - 4, top_pad + 10, peak))
    parts.append(Markup('<line class="baseline" x1="{}" x2="{}" y1="{}" y2="{}"/>').format(
        left_pad, width, top_pad + plot_h, top_pad + plot_h))
    for i, day in enumerate(days):
        x = left_pad + i * slot + (slot - bar_w) / 2
        y = top_pad + plot_h
        parts.append(Markup('<g class="day" data-date="{}" data-total="{}">').format(
            day.day.isoformat(), day.total))
        for phase, count in day.phases.items():
            h = plot_h * count / scale_max
            y -= h
            parts.append(Markup(
                '<rect class="bar phase-{}" data-phase="{}" data-count="{}" x="{:.1f}" '
                'y="{:.1f}" width="{:.1f}" height="{:.1f}"><title>{} {}: {}</title></rect>'
            ).format(phase.lower(), phase, count, x, y, bar_w, h, day.day.isoformat(),
                     phase, count))
        parts.append(Markup('<text class="axis" x="{:.1f}" y="{}" text-anchor="middle">{}'
                            '</text></g>').format(x + bar_w / 2, height - 6,
                                                  day.day.strftime("%d")))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"
