"""One run in full, like `argo get`: `cyclone get wfr NAME`, `describe run NAME`, `watch NAME`.

The view is plain text: a header (where the run belongs, its phase, times, trigger and
labels), its stages in DAG order indented by depth with phase, attempt, start, duration and
message, the stages' outputs, and the Kubernetes Events of the run and its pods.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from cyclone.api import keys
from cyclone.api.phases import Phase
from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import (
    find_object,
    human_duration,
    iso_time,
    lookup_kind,
    parse_time,
    run_display_phase,
    run_duration,
    run_times,
)
from cyclone.cli.output import console, format_table, terminal_width
from cyclone.cli.session import client_from, handles_errors
from cyclone.cli.watch import (
    failure_reason,
    run_phase,
    run_states,
    stage_depths,
    stage_rows,
    watch_run,
)

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

WORKFLOW_RUNS = lookup_kind("workflowruns")
_SYMBOL = {Phase.SUCCEEDED: "✔", Phase.FAILED: "✖", Phase.CANCELLED: "⊘",
           Phase.RUNNING: "●", Phase.WAITING: "◷", Phase.PENDING: "○"}
_OWN_LABELS = (keys.LABEL_PROJECT, keys.LABEL_WORKFLOW, keys.LABEL_TENANT)


@dataclass(frozen=True)
class RunPlace:
    project: str
    workflow: str
    path: str


def place_of(obj: dict, path: str) -> RunPlace:
    """Project and workflow of a run found at `path` (…/projects/P/workflows/W/…)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    parts = path.split("/")
    return RunPlace(labels.get(keys.LABEL_PROJECT) or parts[2],
                    labels.get(keys.LABEL_WORKFLOW) or parts[4], path)


def _ago(moment: datetime | None, now: datetime) -> str:
    return human_duration((now - moment).total_seconds()) if moment else ""


def stage_table(run: dict, workflow: dict | None, now: datetime) -> tuple[list[str],
                                                                          list[list[str]]]:
    """The stage tree: each stage indented under its deepest dependency, in DAG order."""
    statuses = (run.get("status") or {}).get("stages") or {}
    rows = stage_rows(run, workflow)
    depth = stage_depths(rows)
    table = []
    for row in rows:
        attempts = (statuses.get(row.name) or {}).get("attempts") or ""
        duration = ""
        if row.started:
            duration = human_duration(((row.ended or now) - row.started).total_seconds())
        name = "  " * depth[row.name] + f"{_SYMBOL.get(row.phase, '?')} {row.name}"
        detail = ": ".join(p for p in (row.reason, row.message) if p)
        table.append([name + (" (trivial)" if row.trivial else ""), row.phase,
                      str(attempts), _ago(row.started, now), duration, detail])
    return ["STAGE", "PHASE", "ATTEMPT", "STARTED", "DURATION", "MESSAGE"], table


def output_rows(run: dict, workflow: dict | None) -> list[list[str]]:
    statuses = (run.get("status") or {}).get("stages") or {}
    rows = []
    for row in stage_rows(run, workflow):
        for output in (statuses.get(row.name) or {}).get("outputs") or []:
            key = output.get("key", output.get("name", ""))
            rows.append([row.name, str(key), str(output.get("value", ""))])
    return rows


def _event_time(event: dict) -> datetime | None:
    return parse_time(event.get("lastTimestamp") or event.get("eventTime")
                      or event.get("firstTimestamp")
                      or (event.get("metadata") or {}).get("creationTimestamp"))


def event_rows(run: dict, events: list[dict], now: datetime) -> list[list[str]]:
    """Events of the run and its pods, then the pod warnings the run's status kept (of
    pods whose Events are gone), oldest first."""
    seen = {(e.get("metadata") or {}).get("name") for e in events}
    found: list[tuple[datetime | None, list[str]]] = []
    for event in events:
        involved = event.get("involvedObject") or {}
        count = int(event.get("count") or 1)
        found.append((_event_time(event), [
            event.get("type") or "Normal", event.get("reason") or "",
            _ago(_event_time(event), now) + (f" (x{count})" if count > 1 else ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            event.get("message") or ""]))
    for stage, status in ((run.get("status") or {}).get("stages") or {}).items():
        for event in status.get("events") or []:
            if event.get("name") in seen:
                continue
            moment = parse_time(event.get("lastTimestamp"))
            found.append((moment, ["Warning", event.get("reason") or "",
                                   _ago(moment, now), f"stage/{stage}",
                                   event.get("message") or ""]))
    found.sort(key=lambda item: item[0] or now)
    return [row for _, row in found]


def _too_narrow(headers: list[str], rows: list[list[str]], width: int) -> bool:
    """Whether the columns before MESSAGE leave it less than a few words of room."""
    fixed = sum(max(len(row[i]) for row in [headers, *rows]) + 2
                for i in range(len(headers) - 1))
    return fixed + 16 > width


def _labels(run: dict) -> str:
    labels = (run.get("metadata") or {}).get("labels") or {}
    shown = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in _OWN_LABELS]
    return ", ".join(shown) or "<none>"


def describe_lines(run: dict, place: RunPlace, workflow: dict | None, events: list[dict],
                   *, now: datetime | None = None, width: int | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    meta = run.get("metadata") or {}
    overall = (run.get("status") or {}).get("overall") or {}
    created = parse_time(meta.get("creationTimestamp"))
    started, finished = run_times(run)
    trigger = (meta.get("annotations") or {}).get(keys.ANNOTATION_WORKFLOWRUN_TRIGGER)
    header = [
        ("Name", meta.get("name", "")), ("Project", place.project),
        ("Workflow", place.workflow), ("Phase", run_display_phase(run)),
        ("Reason", overall.get("reason") or ""), ("Message", overall.get("message") or ""),
        ("Created", f"{iso_time(created)} ({_ago(created, now)} ago)" if created else ""),
        ("Started", iso_time(started)), ("Finished", iso_time(finished)),
        ("Duration", run_duration(run, now)), ("Trigger", trigger or ""),
        ("Retry of", (run.get("spec") or {}).get("retryOf") or ""),
        ("Labels", _labels(run)),
    ]
    lines = []
    for label, value in header:
        if not value:
            continue
        parts = textwrap.wrap(value, max(20, width - 11)) if width is not None else [value]
        lines += [f"{label + ':' if i == 0 else '':<10} {part}" for i, part in
                  enumerate(parts or [value])]
    headers, stages = stage_table(run, workflow, now)
    if width is not None and _too_narrow(headers, stages, width):
        keep = [i for i, header in enumerate(headers) if header != "STARTED"]
        headers, stages = [headers[i] for i in keep], [[r[i] for i in keep] for r in stages]
    lines += ["", *format_table(headers, stages, width=width, separator="  ")]
    outputs = output_rows(run, workflow)
    if outputs:
        lines += ["", *format_table(["STAGE", "OUTPUT", "VALUE"], outputs, width=width,
                                    separator="  ")]
    rows = event_rows(run, events, now)
    lines.append("")
    if rows:
        lines += format_table(["TYPE", "REASON", "AGE", "OBJECT", "MESSAGE"], rows,
                              width=width, separator="  ")
    else:
        lines.append("Events:   <none>")
    return lines


def workflow_of(client: CycloneClient, place: RunPlace) -> dict | None:
    try:
        return client.get(f"/projects/{place.project}/workflows/{place.workflow}")
    except CliError:
        return None


def run_events(client: CycloneClient, path: str) -> list[dict]:
    """The run's Events; none from a server that does not serve them."""
    try:
        return client.items(f"{path}/events")
    except CliError as err:
        if err.status in (404, 405):
            return []
        raise


def show_run(client: CycloneClient, run: dict, path: str) -> None:
    place = place_of(run, path)
    for line in describe_lines(run, place, workflow_of(client, place),
                               run_events(client, path), width=terminal_width()):
        typer.echo(line)


def locate_run(client: CycloneClient, name: str, project: str | None,
               workflow: str | None) -> tuple[dict, RunPlace]:
    run, path = find_object(client, WORKFLOW_RUNS, name, project, workflow)
    return run, place_of(run, path)


def follow_run(client: CycloneClient, name: str, place: RunPlace, interval: float) -> None:
    """The live DAG until the run ends; a CliError when it did not succeed."""
    definition = workflow_of(client, place)
    try:
        final = watch_run(run_states(client, place.path, pause=interval), definition,
                          console())
    except KeyboardInterrupt:
        typer.echo(f"stopped watching workflowrun {name}; it keeps running "
                   f"(`cyclone watch {name}` to see it again)", err=True)
        raise typer.Exit(130) from None
    phase = run_phase(final)
    if phase != Phase.SUCCEEDED:
        raise CliError(f"workflowrun {name} {phase}: {failure_reason(final, definition)}")
    typer.echo(f"workflowrun/{name} Succeeded")


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def describe(
        ctx: typer.Context,
        kind: str = typer.Argument(..., help="run (or wfr, workflowrun)."),
        name: str = typer.Argument(..., help="Name of the run."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
    ) -> None:
        """Show a run: its stages in DAG order, their outputs, and its events."""
        if lookup_kind(kind) is not WORKFLOW_RUNS:
            raise CliError(f"describe shows workflowruns; for {kind} use "
                           f"`cyclone get {kind} NAME -o yaml`")
        with client_from(ctx) as client:
            run, place = locate_run(client, name, project, workflow)
            show_run(client, run, place.path)

    @app.command()
    @handles_errors
    def watch(
        ctx: typer.Context,
        run: str = typer.Argument(..., help="Name of the run."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
        interval: float = typer.Option(0.5, "--interval", hidden=True),
    ) -> None:
        """Show a run's stages live until it ends; exit 1 when it did not succeed."""
        with client_from(ctx) as client:
            _, place = locate_run(client, run, project, workflow)
            follow_run(client, run, place, interval)
