"""`cyclone logs`: a run's stored logs, or each stage's live stream with -f.

Both print one header format, ``==> stage <==`` before the workload container's log of a
stage (``==> stage/container <==`` for another container), when more than one log is shown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

from cyclone.api.formats import parse_duration
from cyclone.api.phases import TERMINAL_PHASES, Phase
from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.runs import locate_run, workflow_definition
from cyclone.cli.session import client_from, handles_errors
from cyclone.cli.watch import READ_TIMEOUT, RECONNECTS, dag_order, run_phase, run_states

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

SETTLE_SECONDS = 5.0
"""How long -f waits, after a stage's stream ended, for the stage's phase to be final."""


def _stage_graph(client: CycloneClient, run: dict, project: str,
                 workflow: str) -> dict[str, tuple[str, ...]]:
    definition = workflow_definition(client, project, workflow) or {}
    declared = {s["name"]: tuple(s.get("depends") or [])
                for s in (definition.get("spec") or {}).get("stages") or []}
    for name, status in ((run.get("status") or {}).get("stages") or {}).items():
        declared.setdefault(name, tuple(status.get("depends") or []))
    return declared


def _stage_status(run: dict, stage: str) -> dict:
    stage_entry = ((run.get("status") or {}).get("stages") or {}).get(stage) or {}
    return stage_entry.get("status") or {}


def _stage_phase(run: dict, stage: str) -> str:
    return _stage_status(run, stage).get("phase") or Phase.PENDING.value


def waiting_notice(run: dict, graph: dict[str, tuple[str, ...]], stage: str) -> str:
    """What a follower waits for while `stage` has not started."""
    from cyclone.api.references import upstream_of

    before = [s for s in upstream_of(graph, stage)
              if _stage_phase(run, s) not in TERMINAL_PHASES]
    count = f"{len(before)} stage{'' if len(before) == 1 else 's'} before it"
    return f"waiting for stage {stage} to start (run is {run_phase(run)}; {count})"


def _ran(run: dict, stage: str) -> bool:
    """Whether the stage started: a pod was made for it, or it left Pending other than by
    being cancelled (what the end of a run does to the stages it never started)."""
    entry = ((run.get("status") or {}).get("stages") or {}).get(stage) or {}
    return bool(entry.get("pod")) or _stage_phase(run, stage) not in (
        Phase.PENDING, Phase.CANCELLED)


def not_succeeded(run: dict, stage: str) -> str | None:
    """Why a followed stage counts as not succeeded; None when it succeeded, or when it
    still runs (its log ended, its phase is not known yet)."""
    status = _stage_status(run, stage)
    phase = status.get("phase") or Phase.PENDING.value
    if phase == Phase.SUCCEEDED or (
            phase not in TERMINAL_PHASES and phase != Phase.PENDING):
        return None
    if not _ran(run, stage):
        return f"stage {stage} never started: the run ended {run_phase(run)}"
    why = status.get("message") or status.get("reason")
    return f"stage {stage} {phase}" + (f": {why}" if why else "")


def log_header(stage: str, container: str | None) -> str:
    """The stored logs' header (`cyclone.server.logs.order.log_header`): a sidecar's log is
    named by its container too."""
    if container and container.startswith(("csc-", "wsc-")):
        return f"==> {stage}/{container} <=="
    return f"==> {stage} <=="


def line_params(timestamps: bool, since: str | None, since_time: str | None) -> dict:
    """The log routes' `timestamps`, `sinceSeconds` and `sinceTime` from the options."""
    if since and since_time:
        raise CliError("give at most one of --since and --since-time")
    params: dict = {"timestamps": "true" if timestamps else None, "sinceTime": since_time}
    if since:
        try:
            seconds = parse_duration(since).total_seconds()
        except ValueError as err:
            raise CliError(f"--since: {err}") from None
        params["sinceSeconds"] = max(1, math.ceil(seconds))
    return params


def follow_logs(client: CycloneClient, path: str, graph: dict[str, tuple[str, ...]],
                stages: list[str], container: str | None, interval: float = 0.5,
                params: dict | None = None) -> None:
    """Stream each stage's log in turn; raise `CliError` naming the first stage that did not
    succeed (failed, cancelled, or never started because the run ended)."""
    failures: list[str] = []
    for stage in stages:
        run = _wait_for_start(client, path, graph, stage, interval)
        if _ran(run, stage):
            if len(stages) > 1:
                typer.echo(log_header(stage, container))
            for line in log_lines(client, path, {"stage": stage, "container": container,
                                                 **(params or {})}, interval):
                typer.echo(line)
            run = _settled(client, path, stage, interval)
        reason = not_succeeded(run, stage)
        if reason:
            failures.append(reason)
    if failures:
        raise CliError(failures[0])


def log_lines(client: CycloneClient, path: str, params: dict,
              pause: float = 0.5) -> Iterator[str]:
    """A stage's live log, line by line, until its `end` event.

    The stream starts from the log's first line (of those the parameters select), so a
    dropped connection is made again and the lines already given are skipped.
    """
    import httpx

    given = 0
    failures = 0
    while True:
        seen = 0
        try:
            for event in client.server_events(f"{path}/logstream/sse", params,
                                              read_timeout=READ_TIMEOUT):
                if event.event == "end":
                    return
                if event.event != "message":
                    continue
                failures = 0
                seen += 1
                if seen > given:
                    given = seen
                    yield event.data
            problem: Exception = CliError("the server ended the log stream before its end")
        except httpx.HTTPError as err:
            problem = client.unreachable(err)
        failures += 1
        if failures >= RECONNECTS:
            raise problem
        time.sleep(pause * failures)


def _wait_for_start(client: CycloneClient, path: str, graph: dict[str, tuple[str, ...]],
                    stage: str, interval: float) -> dict:
    said = ""
    states = run_states(client, path, pause=interval)
    try:
        for run in states:
            if _stage_phase(run, stage) != Phase.PENDING or run_phase(run) in TERMINAL_PHASES:
                return run
            notice = waiting_notice(run, graph, stage)
            if notice != said:
                typer.echo(notice, err=True)
                said = notice
    finally:
        states.close()
    return client.get(path)


def _settled(client: CycloneClient, path: str, stage: str, interval: float) -> dict:
    """The run once the stage's phase is final (its log may end just before), or as it is
    after `SETTLE_SECONDS`."""
    deadline = time.monotonic() + SETTLE_SECONDS
    states = run_states(client, path, heartbeat=1, pause=interval)
    try:
        for run in states:
            if (_stage_phase(run, stage) in TERMINAL_PHASES
                    or run_phase(run) in TERMINAL_PHASES or time.monotonic() > deadline):
                return run
    finally:
        states.close()
    return client.get(path)


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def logs(
        ctx: typer.Context,
        run: str = typer.Argument(..., help="Run name."),
        stage: str | None = typer.Option(None, "--stage", "-s", help="Only this stage."),
        container: str | None = typer.Option(None, "--container", "-c",
                                             help="Container (default: the workload)."),
        follow: bool = typer.Option(False, "--follow", "-f", help="Stream live until the "
                                    "stage ends; exit non-zero unless it succeeded."),
        timestamps: bool = typer.Option(False, "--timestamps", help="Prefix each line with "
                                        "the RFC 3339 time it was stored."),
        since: str | None = typer.Option(None, "--since", metavar="DURATION",
                                         help="Only lines of the last DURATION, e.g. 10m."),
        since_time: str | None = typer.Option(None, "--since-time", metavar="TIME",
                                              help="Only lines from this RFC 3339 time on."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
    ) -> None:
        """Print a run's logs, stage by stage in start order (stored ones, or live with -f)."""
        params = line_params(timestamps, since, since_time)
        with client_from(ctx) as client:
            obj, path, p, wf = locate_run(client, run, project, workflow)
            if follow:
                graph = _stage_graph(client, obj, p, wf)
                if stage and graph and stage not in graph:
                    raise CliError(f"workflowrun {run} has no stage {stage!r} (stages: "
                                   f"{', '.join(dag_order(graph))})")
                stages = [stage] if stage else dag_order(graph)
                follow_logs(client, path, graph, stages, container, params=params)
            else:
                typer.echo(client.text(f"{path}/logs", stage=stage, container=container,
                                       **params), nl=False)
