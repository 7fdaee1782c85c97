"""Showing a run's DAG with each stage's state, live, like `argo submit --watch`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.cells import cell_len, set_cell_size

from cyclone.api.phases import TERMINAL_PHASES, Phase
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import PAUSED, human_duration, parse_time, run_display_phase
from cyclone.cli.output import format_table

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from cyclone.cli.client import CycloneClient

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


def stage_depths(rows: list[StageRow]) -> dict[str, int]:
    """How deep each stage sits in the DAG (rows in DAG order): one below its deepest
    dependency."""
    depth: dict[str, int] = {}
    for row in rows:
        depth[row.name] = 1 + max((depth.get(d, -1) for d in row.depends), default=-1)
    return depth


def _header(run: dict, now: datetime) -> str:
    phase = run_display_phase(run)
    symbol, _ = _STYLE.get(phase, ("?", ""))
    started = parse_time(((run.get("status") or {}).get("overall") or {}).get("startTime")) \
        or parse_time((run.get("metadata") or {}).get("creationTimestamp"))
    took = f"  {human_duration((now - started).total_seconds())}" if started else ""
    return f"workflowrun {run['metadata']['name']}  {symbol} {phase}{took}"


_MIN_MESSAGE = 12


def run_lines(run: dict, workflow: dict | None, now: datetime | None = None,
              width: int | None = None) -> list[tuple[str, str]]:
    """The view as (line, phase) pairs: the header, the column names, a line per stage.

    Without `width` every line is whole (pipes, CI logs). Within `width` (a terminal) no
    line is longer: when the AFTER column leaves too little room, the DAG is shown by
    indenting each stage under its dependencies instead, and MESSAGE is shortened last.
    """
    now = now or datetime.now(UTC)
    rows = stage_rows(run, workflow)
    depth = stage_depths(rows)
    cells = []
    for row in rows:
        duration = ""
        if row.started:
            duration = human_duration(((row.ended or now) - row.started).total_seconds())
        name = f"{_STYLE.get(row.phase, ('?', ''))[0]} {row.name}"
        cells.append([name + (" (trivial)" if row.trivial else ""), row.phase,
                      ", ".join(row.depends), duration,
                      ": ".join(p for p in (row.reason, row.message) if p)])
    headers = ["STAGE", "PHASE", "AFTER", "DURATION", "MESSAGE"]
    lines = format_table(headers, cells, separator="  ")
    if width is not None and max(cell_len(line) for line in lines) > width:
        fixed = sum(max(cell_len(c[i]) for c in [headers, *cells]) + 2 for i in range(4))
        if fixed + _MIN_MESSAGE > width:
            headers = [h for h in headers if h != "AFTER"]
            cells = [["  " * depth[r.name] + c[0], c[1], c[3], c[4]]
                     for r, c in zip(rows, cells, strict=True)]
        lines = format_table(headers, cells, separator="  ", width=width)
    phases = ["", "", *(row.phase for row in rows)]
    lines = [_header(run, now), *lines]
    if width is not None:
        lines = [line if cell_len(line) <= width else set_cell_size(line, width - 1) + "…"
                 for line in lines]
    return list(zip(lines, phases, strict=True))


class RunView:
    """A run's live view, laid out for the width it is drawn in."""

    def __init__(self, run: dict, workflow: dict | None, now: datetime | None = None) -> None:
        self.run, self.workflow, self.now = run, workflow, now

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        lines = run_lines(self.run, self.workflow, self.now, width=options.max_width)
        for index, (line, phase) in enumerate(lines):
            style = "bold" if index < 2 else _STYLE.get(phase, ("", ""))[1]
            yield Text(line, style=style, no_wrap=True, overflow="ellipsis")


def render_run(run: dict, workflow: dict | None, now: datetime | None = None) -> RunView:
    return RunView(run, workflow, now)


POD_PENDING = "PodPending"
"""The reason of a stage whose pod has not started; its message says why, and each new
message is a line of the view printed to pipes."""

RECONNECTS = 5
"""Connection failures in a row after which following a stream gives up."""
READ_TIMEOUT = 60.0
"""Seconds without a byte (the server sends a keep-alive every 15) before reconnecting."""


def apply_change(run: dict, change: dict) -> dict:
    """The run after a `change` event of its stream: the new status without stages, the
    changed stages over the others, the removed stages gone."""
    removed = set(change.get("removedStages") or [])
    stages = {name: entry for name, entry in
              ((run.get("status") or {}).get("stages") or {}).items() if name not in removed}
    stages.update(change.get("stages") or {})
    metadata = {**(run.get("metadata") or {}),
                "resourceVersion": change.get("resourceVersion")}
    return {**run, "metadata": metadata, "status": {**(change.get("status") or {}),
                                                    "stages": stages}}


def run_states(client: CycloneClient, path: str, *, heartbeat: float | None = None,
               pause: float = 0.5) -> Iterator[dict]:
    """The run at `path` as its stream tells it: its state now, then each new state, until
    the run is terminal; the current state again at each keep-alive.

    A dropped connection is made again with `Last-Event-ID` (the server then sends only
    what changed since); `RECONNECTS` failures in a row end in a `CliError`.
    """
    import httpx

    name = path.rsplit("/", 1)[-1]
    run: dict | None = None
    last_id: str | None = None
    failures = 0
    while True:
        try:
            for event in client.server_events(
                    f"{path}/stream", {"heartbeat": heartbeat}, last_event_id=last_id,
                    read_timeout=READ_TIMEOUT):
                failures = 0
                if event.event == "snapshot":
                    run = json.loads(event.data)
                elif event.event == "change" and run is not None:
                    run = apply_change(run, json.loads(event.data))
                elif event.event == "end":
                    if json.loads(event.data or "{}").get("reason") == "deleted":
                        raise CliError(f"workflowrun {name} was deleted")
                    return
                elif not (event.event == "" and run is not None):
                    continue
                last_id = event.id or last_id
                assert run is not None
                yield run
            problem: Exception = CliError(f"the server ended the stream of workflowrun {name}")
        except httpx.HTTPError as err:
            problem = client.unreachable(err)
        failures += 1
        if failures >= RECONNECTS:
            raise problem
        time.sleep(pause * failures)


def watch_run(states: Iterable[dict], workflow: dict | None, console: Console) -> dict:
    """Show the run until it is terminal; returns its last state. `states` are the run's
    successive states (`run_states`).

    On a terminal the DAG is redrawn in place; otherwise (CI logs, pipes) each change of a
    stage's phase, and of why its pod has not started, is printed as one line, then the
    final DAG.
    """
    updates = iter(states)
    try:
        first = run = next(updates)
        if console.is_terminal:
            from rich.live import Live

            with Live(render_run(first, workflow), console=console,
                      refresh_per_second=4) as live:
                for run in _until_terminal(first, updates):
                    live.update(render_run(run, workflow))
            return run
        seen: dict[str, tuple[str, str]] = {}
        for run in _until_terminal(first, updates):
            for row in stage_rows(run, workflow):
                waiting = row.message if row.reason == POD_PENDING else ""
                if seen.get(row.name) != (row.phase, waiting):
                    seen[row.name] = (row.phase, waiting)
                    if row.phase != Phase.PENDING:
                        detail = ": ".join(p for p in (row.reason, waiting) if p)
                        console.print(f"{row.name}: {row.phase}"
                                      + (f" ({detail})" if detail else ""),
                                      markup=False, highlight=False, soft_wrap=True)
        for line, _ in run_lines(run, workflow):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return run
    finally:
        close = getattr(updates, "close", None)
        if close is not None:
            close()


def _until_terminal(first: dict, updates: Iterator[dict]) -> Iterator[dict]:
    """`first` and the states after it, up to the first terminal one."""
    run = first
    yield run
    while run_phase(run) not in TERMINAL_PHASES:
        try:
            run = next(updates)
        except StopIteration:
            return
        yield run
