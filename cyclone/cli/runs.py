"""`cyclone run`, `stop`, `pause`, `resume`, `retry` and `rerun`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cyclone.api import keys
from cyclone.api.phases import Phase
from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import find_object, lookup_kind
from cyclone.cli.output import console
from cyclone.cli.session import Interrupted, client_from, handles_errors
from cyclone.cli.watch import failure_reason, run_phase, run_states, watch_run

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

WORKFLOW_RUNS = lookup_kind("workflowruns")


def parse_pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise CliError(f"{what} {value!r} is not KEY=VALUE")
        pairs.append((key, val))
    return pairs


def run_body(workflow: str, name: str, variables: list[str], params: list[str],
             timeout: str | None = None) -> dict:
    """The WorkflowRun to create for `cyclone run`."""
    stages: dict[str, list[dict]] = {}
    for key, value in parse_pairs(params, "--param"):
        stage, dot, argument = key.partition(".")
        if not dot or not stage or not argument:
            raise CliError(f"--param {key!r} is not STAGE.ARGUMENT=VALUE")
        stages.setdefault(stage, []).append({"name": argument, "value": value})
    spec: dict = {
        "workflowRef": {"apiVersion": keys.API_VERSION, "kind": "Workflow", "name": workflow},
        "globalVariables": [{"name": k, "value": v}
                            for k, v in parse_pairs(variables, "--var")],
        "stages": [{"name": s, "parameters": p} for s, p in stages.items()],
    }
    if timeout:
        spec["timeout"] = timeout
    return {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
            "metadata": {"name": name}, "spec": spec}


def new_run_name(workflow: str) -> str:
    import secrets

    suffix = "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    return f"{workflow[:57]}-{suffix}"


def run_path(project: str, workflow: str, run: str | None = None) -> str:
    return WORKFLOW_RUNS.path(project, workflow, run)


def locate_run(client: CycloneClient, run: str, project: str | None,
               workflow: str | None) -> tuple[dict, str, str, str]:
    """A run by name: (object, item path, project, workflow)."""
    obj, path = find_object(client, WORKFLOW_RUNS, run, project, workflow)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    project = labels.get(keys.LABEL_PROJECT) or path.split("/")[2]
    workflow = labels.get(keys.LABEL_WORKFLOW) or path.split("/")[4]
    return obj, path, project, workflow


def workflow_definition(client: CycloneClient, project: str, workflow: str) -> dict | None:
    try:
        return client.get(f"/projects/{project}/workflows/{workflow}")
    except CliError:
        return None


def _follow_and_report(client: CycloneClient, path: str, project: str, workflow: str,
                       interval: float) -> None:
    definition = workflow_definition(client, project, workflow)
    name = path.rsplit("/", 1)[-1]
    try:
        final = watch_run(run_states(client, path, pause=interval), definition, console())
    except KeyboardInterrupt:
        raise Interrupted(f"stopped watching workflowrun {name}; it keeps running "
                          f"(`cyclone get wfr {name}`, `cyclone stop {name}`)") from None
    phase = run_phase(final)
    if phase != Phase.SUCCEEDED:
        raise CliError(f"workflowrun {name} {phase}: {failure_reason(final, definition)}")
    typer.echo(f"workflowrun/{name} Succeeded")


def register(app: typer.Typer) -> None:
    @app.command("run")
    @handles_errors
    def run_workflow(
        ctx: typer.Context,
        workflow: str = typer.Argument(..., help="Workflow to run."),
        project: str = typer.Option(..., "--project", "-p", help="Project of the workflow."),
        variables: list[str] = typer.Option([], "--var", metavar="KEY=VALUE",
                                            help="Global variable (repeatable)."),
        params: list[str] = typer.Option([], "--param", metavar="STAGE.ARG=VALUE",
                                         help="Stage argument (repeatable)."),
        name: str | None = typer.Option(None, "--name", help="Run name (default: generated)."),
        timeout: str | None = typer.Option(None, "--timeout", help="Run timeout, e.g. 30m."),
        watch: bool = typer.Option(False, "--watch", help="Show the DAG live until it ends; "
                                   "exit non-zero when the run fails."),
        interval: float = typer.Option(0.5, "--interval", hidden=True),
        accelerate: bool = typer.Option(
            False, "--accelerate", help="Mount the project's dependency caches (/root/.m2, "
            ".gradle, .npm, .ivy2, .cache) into the stages: the run is labelled "
            f"{keys.LABEL_ACCELERATION}=true."),
    ) -> None:
        """Start a run of a workflow."""
        body = run_body(workflow, name or new_run_name(workflow), variables, params, timeout)
        if accelerate:
            body["metadata"]["labels"] = {keys.LABEL_ACCELERATION: "true"}
        with client_from(ctx) as client:
            created = client.post(run_path(project, workflow), body)
            run_name = created["metadata"]["name"]
            typer.echo(f"workflowrun/{run_name} created")
            if watch:
                _follow_and_report(client, run_path(project, workflow, run_name), project,
                                   workflow, interval)

    def run_action(action: str, past: str) -> None:
        @app.command(action)
        @handles_errors
        def command(
            ctx: typer.Context,
            run: str = typer.Argument(..., help="Run name."),
            project: str | None = options.PROJECT,
            workflow: str | None = options.WORKFLOW,
        ) -> None:
            with client_from(ctx) as client:
                _, path, _, _ = locate_run(client, run, project, workflow)
                client.put(f"{path}/{action}")
            typer.echo(f"workflowrun/{run} {past}")

        command.__doc__ = f"{action.capitalize()} a run."

    @app.command()
    @handles_errors
    def stop(
        ctx: typer.Context,
        run: str = typer.Argument(..., help="Run name."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
        force: bool = typer.Option(False, "--force", help="Kill the run's pods at once "
                                   "(no grace period; a stage's TERM trap does not run)."),
    ) -> None:
        """Stop a run: its running stages get SIGTERM and their grace period (default 30s)."""
        with client_from(ctx) as client:
            _, path, _, _ = locate_run(client, run, project, workflow)
            client.request("PUT", f"{path}/stop", params={"force": "true"} if force else None)
        typer.echo(f"workflowrun/{run} stopped{' (forced)' if force else ''}")

    run_action("pause", "paused")
    run_action("resume", "resumed")

    def repeat_command(how: str, summary: str, argument_help: str) -> None:
        @app.command(how)
        @handles_errors
        def command(
            ctx: typer.Context,
            run: str = typer.Argument(..., help=argument_help),
            project: str | None = options.PROJECT,
            workflow: str | None = options.WORKFLOW,
            watch: bool = typer.Option(False, "--watch", help="Show the new run live; exit "
                                       "non-zero when it fails."),
            interval: float = typer.Option(0.5, "--interval", hidden=True),
        ) -> None:
            with client_from(ctx) as client:
                _, path, p, wf = locate_run(client, run, project, workflow)
                created = client.post(f"{path}/{how}")
                run_name = created["metadata"]["name"]
                typer.echo(f"workflowrun/{run_name} created ({how} of {run})")
                if watch:
                    _follow_and_report(client, run_path(p, wf, run_name), p, wf, interval)

        command.__doc__ = summary

    repeat_command("retry", "Start a new run that reuses the succeeded stages of RUN and runs "
                   "the rest again (a succeeded run has nothing to retry: see rerun).",
                   "A finished run that did not succeed.")
    repeat_command("rerun", "Start a new run of RUN's workflow with its parameters and "
                   "variables, running every stage again.", "A run to run again.")
