"""`cyclone logs`: a run's stored logs, or each stage's live stream with -f."""

from __future__ import annotations

import time

import typer

from cyclone.api.common import Phase
from cyclone.cli.client import CycloneClient
from cyclone.cli.runs import locate_run, workflow_definition
from cyclone.cli.session import client_from, handles_errors
from cyclone.cli.watch import TERMINAL_PHASES, dag_order, run_phase


def _stage_order(client: CycloneClient, run: dict, project: str, workflow: str) -> list[str]:
    definition = workflow_definition(client, project, workflow) or {}
    declared = {s["name"]: tuple(s.get("depends") or [])
                for s in (definition.get("spec") or {}).get("stages") or []}
    for name, status in ((run.get("status") or {}).get("stages") or {}).items():
        declared.setdefault(name, tuple(status.get("depends") or []))
    return dag_order(declared)


def _stage_phase(run: dict, stage: str) -> str:
    stage_status = ((run.get("status") or {}).get("stages") or {}).get(stage) or {}
    return (stage_status.get("status") or {}).get("phase") or Phase.PENDING.value


def follow_logs(client: CycloneClient, path: str, project: str, workflow: str,
                stages: list[str], container: str | None, interval: float = 0.5) -> None:
    """Stream each stage's log in turn, skipping stages the run will never start."""
    for index, stage in enumerate(stages):
        while True:
            run = client.get(path)
            if _stage_phase(run, stage) != Phase.PENDING:
                break
            if run_phase(run) in TERMINAL_PHASES:
                break
            time.sleep(interval)
        if _stage_phase(run, stage) == Phase.PENDING:
            continue
        if len(stages) > 1:
            typer.echo(f"{'' if index == 0 else chr(10)}==> {stage} <==")
        for line in client.event_stream(f"{path}/logstream", stage=stage, container=container):
            typer.echo(line)


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
                                    "stage ends."),
        project: str | None = typer.Option(None, "--project", "-p", help="Project."),
        workflow: str | None = typer.Option(None, "--workflow", "-w", help="Workflow."),
    ) -> None:
        """Print a run's logs (stored ones, or live with -f)."""
        with client_from(ctx) as client:
            obj, path, p, wf = locate_run(client, run, project, workflow)
            if follow:
                stages = [stage] if stage else _stage_order(client, obj, p, wf)
                follow_logs(client, path, p, wf, stages, container)
            else:
                typer.echo(client.text(f"{path}/logs", stage=stage, container=container),
                           nl=False)
