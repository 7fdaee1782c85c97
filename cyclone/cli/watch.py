"""Showing a run's DAG with each stage's state, live, like `argo submit --watch`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cyclone.api.common import TERMINAL_PHASES, Phase
from cyclone.cli.kinds import PAUSED, run_display_phase
from cyclone.cli.output import human_duration, parse_time

_STYLE = {Phase.SUCCEEDED: ("✔", "green"), Phase.FAILED: ("✖", "red"),
          Phase.CANCELLED: ("⊘", "yellow"), Phase.RUNNING: ("●", "cyan"),
          Phase.WAITING: ("◷", "magenta"), Phase.PENDING: ("○", "dim"),
          PAUSED: ("‖", "magenta")}


@dataclass(frozen=True)
class StageRow:
    name: str
    depends: tuple[str, ...]
    phase: str
    reason: str
    message: str
    started: datetime | None
    ended: datetime | None
    trivial: bool


def run_phase(run: dict) -> str:
    return ((run.get("status") or {}).get("overall") or {}).get("phase") or Phase.PENDING.value


def dag_order(stages: dict[str, tuple[str, ...]]) -> list[str]:
    """Stages in dependency order (Kahn), keeping declaration order among equals."""
    remaining = dict(stages)
    ordered: list[str] = []
    while remaining:
        ready = [s for s, deps in remaining.items()
                 if all(d in ordered or d not in stages for d in deps)]
        if not ready:
            ordered.extend(remaining)
            break
        for stage in ready:
            ordered.append(stage)
            del remaining[stage]
    return ordered


def stage_rows(run: dict, workflow: dict | None) -> list[StageRow]:
    declared = {
        s["name"]: tuple(s.get("depends") or [])
        for s in ((workflow or {}).get("spec") or {}).get("stages") or [] if s.get("name")
    }
    trivial = {s["name"] for s in ((workflow or {}).get("spec") or {}).get("stages") or []
               if s.get("trivial")}
    statuses: dict = (run.get("status") or {}).get("stages") or {}
    for name, status in statuses.items():
        declared.setdefault(name, tuple(status.get("depends") or []))
    rows = []
    for name in dag_order(declared):
        stage = statuses.get(name) or {}
        status = stage.get("status") or {}
        phase = status.get("phase") or Phase.PENDING.value
        rows.append(StageRow(
            name=name, depends=declared[name], phase=phase,
            reason=status.get("reason") or "", message=status.get("message") or "",
            started=parse_time(status.get("startTime")),
            ended=parse_time(status.get("lastTransitionTime")) if phase in TERMINAL_PHASES
            else None,
            trivial=bool(stage.get("trivial")) or name in trivial,
        ))
    return rows


def failure_reason(run: dict, workflow: dict | None) -> str:
    """Why a run failed: its first failed non-trivial stage with reason and message."""
    for row in stage_rows(run, workflow):
        if row.phase in (Phase.FAILED, Phase.CANCELLED) and not row.trivial:
            detail = ": ".join(part for part in (row.reason, row.message) if part)
            return f"stage {row.name} {row.phase.lower()}" + (f": {detail}" if detail else "")
    overall = (run.get("status") or {}).get("overall") or {}
    detail = ": ".join(p for p in (overall.get("reason"), overall.get("message")) if p)
    return detail or "no stage reported a reason"


def render_run(run: dict, workflow: dict | None, now: datetime | None = None) -> Group:
    now = now or datetime.now(UTC)
    phase = run_display_phase(run)
    symbol, style = _STYLE.get(phase, ("?", ""))
    started = parse_time(((run.get("status") or {}).get("overall") or {}).get("startTime")) \
        or parse_time((run.get("metadata") or {}).get("creationTimestamp"))
    header = Text.assemble(
        ("workflowrun ", "bold"), (run["metadata"]["name"], "bold"), "  ",
        (f"{symbol} {phase}", style),
        f"  {human_duration((now - started).total_seconds())}" if started else "",
    )
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("STAGE", "PHASE", "AFTER", "DURATION", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    for row in stage_rows(run, workflow):
        symbol, style = _STYLE.get(row.phase, ("?", ""))
        duration = ""
        if row.started:
            duration = human_duration(((row.ended or now) - row.started).total_seconds())
        detail = ": ".join(p for p in (row.reason, row.message) if p)
        table.add_row(
            Text(f"{symbol} {row.name}" + (" (trivial)" if row.trivial else ""), style=style),
            Text(row.phase, style=style), ", ".join(row.depends), duration, detail,
        )
    return Group(header, table)


def watch_run(fetch_run: Callable[[], dict], workflow: dict | None, console: Console, *,
              interval: float = 0.5) -> dict:
    """Show the run until it is terminal; returns its last state.

    On a terminal the DAG is redrawn in place; otherwise (CI logs, pipes) each change of a
    stage's phase is printed as one line, then the final DAG.
    """
    run = fetch_run()
    if console.is_terminal:
        with Live(render_run(run, workflow), console=console, refresh_per_second=4) as live:
            while run_phase(run) not in TERMINAL_PHASES:
                time.sleep(interval)
                run = fetch_run()
                live.update(render_run(run, workflow))
        return run
    seen: dict[str, str] = {}
    while True:
        for row in stage_rows(run, workflow):
            if seen.get(row.name) != row.phase:
                seen[row.name] = row.phase
                if row.phase != Phase.PENDING:
                    console.print(f"{row.name}: {row.phase}"
                                  + (f" ({row.reason})" if row.reason else ""))
        if run_phase(run) in TERMINAL_PHASES:
            break
        time.sleep(interval)
        run = fetch_run()
    console.print(render_run(run, workflow))
    return run
