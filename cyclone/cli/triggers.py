"""`cyclone trigger create|list|delete`: cron and SCM WorkflowTriggers."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from cyclone.api import keys
from cyclone.api.formats import cron_schedule_error
from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import age, find_object, list_objects, lookup_kind
from cyclone.cli.output import (
    format_table,
    parse_output,
    print_objects,
    sort_objects,
)
from cyclone.cli.runs import parse_pairs
from cyclone.cli.session import client_from, handles_errors
from cyclone.cli.trigger_columns import count_column, next_fire_column, next_fire_time

TRIGGERS = lookup_kind("workflowtriggers")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")


def source_column(trigger: dict) -> str:
    spec = trigger.get("spec") or {}
    if spec.get("type") == "Cron":
        cron = spec.get("cron") or {}
        zone = f" ({cron['timezone']})" if cron.get("timezone") else ""
        return f"{cron.get('schedule', '')}{zone}"
    scm = spec.get("scm") or {}
    events = [name for name in ("push", "tagRelease", "pullRequest", "pullRequestComment",
                                "postCommit") if (scm.get(name) or {}).get("enabled")]
    return f"{scm.get('repo', '')} [{','.join(events)}]"


def trigger_body(
    name: str, project: str, workflow: str, *, cron: str | None, timezone: str | None,
    integration: str | None, repo: str | None, events: list[str], branches: list[str],
    comments: list[str], secret: str | None, params: list[str], disabled: bool,
    concurrency_policy: str | None, starting_deadline: int | None,
) -> dict:
    """The WorkflowTrigger `cyclone trigger create` posts."""
    if bool(cron) == bool(integration):
        raise CliError("give either --cron SCHEDULE or --integration NAME (for SCM events)")
    labels = {keys.LABEL_PROJECT: project, keys.LABEL_WORKFLOW: workflow}
    spec: dict = {
        "workflowRef": {"apiVersion": keys.API_VERSION, "kind": "Workflow", "name": workflow},
        "parameters": [{"name": k, "value": v} for k, v in parse_pairs(params, "--param")],
        "disabled": disabled,
    }
    if cron:
        problem = cron_schedule_error(cron)
        if problem:
            raise CliError(problem)
        spec["type"] = "Cron"
        spec["cron"] = {"schedule": cron, **({"timezone": timezone} if timezone else {})}
        if concurrency_policy:
            if concurrency_policy not in CONCURRENCY_POLICIES:
                raise CliError(f"--concurrency-policy must be one of "
                               f"{', '.join(CONCURRENCY_POLICIES)}")
            spec["concurrencyPolicy"] = concurrency_policy
        if starting_deadline is not None:
            spec["startingDeadlineSeconds"] = starting_deadline
    else:
        if not repo:
            raise CliError("an SCM trigger needs --repo OWNER/NAME")
        chosen = events or ["push"]
        unknown = set(chosen) - {"push", "tag", "pull-request", "comment", "post-commit"}
        if unknown:
            raise CliError(f"unknown --event {', '.join(sorted(unknown))} (push, tag, "
                           "pull-request, comment, post-commit)")
        scm: dict = {"repo": repo}
        if secret:
            scm["secret"] = secret
        if "push" in chosen:
            scm["push"] = {"enabled": True, "branches": branches}
        if "tag" in chosen:
            scm["tagRelease"] = {"enabled": True}
        if "pull-request" in chosen:
            scm["pullRequest"] = {"enabled": True, "branches": branches}
        if "comment" in chosen:
            scm["pullRequestComment"] = {"enabled": True, "comments": comments or ["/retest"]}
        if "post-commit" in chosen:
            scm["postCommit"] = {"enabled": True}
        spec["type"] = "SCM"
        spec["scm"] = scm
        labels[keys.LABEL_TRIGGER_EVENT_SOURCE] = integration or ""
    return {"apiVersion": keys.API_VERSION, "kind": "WorkflowTrigger",
            "metadata": {"name": name, "labels": labels}, "spec": spec}


def print_trigger_table(triggers: list[dict], *, no_headers: bool = False) -> None:
    if not triggers:
        typer.echo("No workflowtriggers found.", err=True)
        return
    now = datetime.now(UTC)
    rows = []
    for trigger in triggers:
        labels = trigger["metadata"].get("labels") or {}
        spec = trigger.get("spec") or {}
        rows.append([trigger["metadata"]["name"], labels.get(keys.LABEL_PROJECT, ""),
                     labels.get(keys.LABEL_WORKFLOW, ""), spec.get("type", ""),
                     source_column(trigger), next_fire_column(trigger),
                     count_column(trigger), str(bool(spec.get("disabled"))).lower(),
                     age(trigger, now)])
    for line in format_table(["NAME", "PROJECT", "WORKFLOW", "TYPE", "SOURCE", "NEXT FIRE",
                              "COUNT", "DISABLED", "AGE"], rows, no_headers=no_headers):
        typer.echo(line)


trigger_app = typer.Typer(help="Create, list and delete workflow triggers (cron and SCM).",
                          no_args_is_help=True)


@trigger_app.command("create")
@handles_errors
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name of the trigger."),
    project: str = typer.Option(..., "--project", "-p", help="Project of the workflow."),
    workflow: str = typer.Option(..., "--workflow", "-w", help="Workflow to run."),
    cron: str | None = typer.Option(None, "--cron",
                                    help="Schedule: 5 cron fields, or 6 with seconds first."),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA zone of --cron."),
    concurrency_policy: str | None = typer.Option(
        None, "--concurrency-policy", help="Allow, Forbid or Replace (cron)."),
    starting_deadline: int | None = typer.Option(
        None, "--starting-deadline", min=0, help="Seconds a missed firing may be late (cron)."),
    integration: str | None = typer.Option(None, "--integration",
                                           help="SCM integration whose events start runs."),
    repo: str | None = typer.Option(None, "--repo", help="Repository, e.g. owner/name."),
    event: list[str] = typer.Option(
        [], "--event", help="push, tag, pull-request, comment or post-commit (repeatable; "
        "default push)."),
    branch: list[str] = typer.Option([], "--branch", help="Branch filter (repeatable)."),
    comment: list[str] = typer.Option([], "--comment",
                                      help="Pull request comment that starts a run."),
    secret: str | None = typer.Option(None, "--secret",
                                      help="Webhook secret of this trigger (SCM)."),
    param: list[str] = typer.Option([], "--param", help="KEY=VALUE (repeatable)."),
    disabled: bool = typer.Option(False, "--disabled", help="Create it disabled."),
) -> None:
    """Create a cron trigger (--cron) or an SCM trigger (--integration, --repo)."""
    body = trigger_body(name, project, workflow, cron=cron, timezone=timezone,
                        integration=integration, repo=repo, events=event, branches=branch,
                        comments=comment, secret=secret, params=param, disabled=disabled,
                        concurrency_policy=concurrency_policy,
                        starting_deadline=starting_deadline)
    with client_from(ctx) as client:
        created = client.post(TRIGGERS.path(project, workflow), body)
    moment = next_fire_time(created)
    suffix = f" (next fire {moment.strftime('%Y-%m-%dT%H:%M:%SZ')})" if moment else ""
    typer.echo(f"workflowtrigger/{created['metadata']['name']} created{suffix}")


@trigger_app.command("list")
@handles_errors
def list_triggers(
    ctx: typer.Context,
    project: str | None = typer.Option(None, "--project", "-p", help="Project (default all)."),
    workflow: str | None = typer.Option(None, "--workflow", "-w",
                                        help="Workflow (default all)."),
    output: str = options.OUTPUT,
    no_headers: bool = options.NO_HEADERS,
    sort_by: str | None = options.SORT_BY,
) -> None:
    """List triggers with their next fire time and how many runs they started."""
    fmt = parse_output(output)
    with client_from(ctx) as client:
        triggers = sort_objects(list_objects(client, TRIGGERS, project, workflow), sort_by)
    if fmt.tabular:
        print_trigger_table(triggers, no_headers=no_headers)
    else:
        print_objects(TRIGGERS, triggers, output, sort_by=sort_by)


@trigger_app.command("delete")
@handles_errors
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name of the trigger."),
    project: str | None = options.PROJECT,
    workflow: str | None = options.WORKFLOW,
) -> None:
    """Delete a trigger (an SCM trigger's repository webhook goes with it)."""
    with client_from(ctx) as client:
        _, path = find_object(client, TRIGGERS, name, project, workflow)
        client.delete(path)
    typer.echo(f"workflowtrigger/{name} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(trigger_app, name="trigger")
