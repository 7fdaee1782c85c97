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
from cyclone.cli.output import format_table, human_duration, parse_time

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


def _header(run: dict, now: datetime) -> tuple[str, str, str]:
    """The run's name, its phase with its symbol, and how long it has been going."""
    phase = run_display_phase(run)
    symbol, _ = _STYLE.get(phase, ("?", ""))
    started = parse_time(((run.get("status") or {}).get("overall") or {}).get("startTime")) \
        or parse_time((run.get("metadata") or {}).get("creationTimestamp"))
    took = human_duration((now - started).total_seconds()) if started else ""
    return run["metadata"]["name"], f"{symbol} {phase}", took


def _cells(run: dict, workflow: dict | None, now: datetime) -> list[tuple[StageRow, list[str]]]:
    cells = []
    for row in stage_rows(run, workflow):
        symbol, _ = _STYLE.get(row.phase, ("?", ""))
        duration = ""
        if row.started:
            duration = human_duration(((row.ended or now) - row.started).total_seconds())
        cells.append((row, [f"{symbol} {row.name}" + (" (trivial)" if row.trivial else ""),
                            row.phase, ", ".join(row.depends), duration,
                            ": ".join(p for p in (row.reason, row.message) if p)]))
    return cells


_COLUMNS = ("STAGE", "PHASE", "AFTER", "DURATION", "MESSAGE")


def render_run(run: dict, workflow: dict | None, now: datetime | None = None) -> Group:
    now = now or datetime.now(UTC)
    name, phase, took = _header(run, now)
    header = Text.assemble(("workflowrun ", "bold"), (name, "bold"), "  ",
                           (phase, _STYLE.get(run_display_phase(run), ("", ""))[1]),
                           f"  {took}" if took else "")
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in _COLUMNS:
        table.add_column(column, no_wrap=column != "MESSAGE")
    for row, cells in _cells(run, workflow, now):
        style = _STYLE.get(row.phase, ("?", ""))[1]
        table.add_row(Text(cells[0], style=style), Text(cells[1], style=style),
                      *(Text(cell) for cell in cells[2:]))
    return Group(header, table)


def run_lines(run: dict, workflow: dict | None, now: datetime | None = None) -> list[str]:
    """The same view as plain lines of any length, for pipes and CI logs."""
    now = now or datetime.now(UTC)
    name, phase, took = _header(run, now)
    header = f"workflowrun {name}  {phase}" + (f"  {took}" if took else "")
    return [header, *format_table(list(_COLUMNS), [c for _, c in _cells(run, workflow, now)],
                                  separator="  ")]


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
                                  + (f" ({row.reason})" if row.reason else ""),
                                  markup=False, highlight=False, soft_wrap=True)
        if run_phase(run) in TERMINAL_PHASES:
            break
        time.sleep(interval)
        run = fetch_run()
    for line in run_lines(run, workflow):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return run
