"""`cyclone apply`, `get` and `delete`: Cyclone objects through the REST API."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cyclone.api import keys
from cyclone.cli import lint, options
from cyclone.cli.describe import show_run
from cyclone.cli.errors import CliError
from cyclone.cli.filters import filter_objects
from cyclone.cli.kinds import (
    RUN_PHASES,
    CliKind,
    all_tenants_items,
    find_object,
    kind_of_object,
    list_objects,
    lookup_kind,
)
from cyclone.cli.output import (
    parse_output,
    print_object,
    print_objects,
)
from cyclone.cli.session import client_from, handles_errors

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

APPLY_ORDER = ("Tenant", "Integration", "Project", "Resource", "Stage", "Workflow",
               "WorkflowTrigger", "WorkflowRun")
_SERVER_OWNED = ("resourceVersion", "uid", "creationTimestamp", "generation",
                 "managedFields", "selfLink", "deletionTimestamp")


def read_documents(source: str) -> list[dict]:
    """The objects of a multi-document YAML file (`-` for stdin); `List`s are unpacked, and
    so is a document that is a sequence of objects (Cyclone v1.2's template files)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as err:
        raise CliError(f"cannot read {source}: {err.strerror or err}") from err
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise CliError(f"{source} is not valid YAML: {err}".splitlines()[0]) from err
    objects: list[dict] = []
    for index, doc in enumerate(documents):
        if isinstance(doc, list) and doc and all(isinstance(item, dict) for item in doc):
            objects.extend(doc)
            continue
        if not isinstance(doc, dict):
            raise CliError(f"{source}: document {index + 1} is not an object")
        if doc.get("kind") == "List" or (doc.get("kind", "").endswith("List") and "items" in doc):
            objects.extend(doc.get("items") or [])
        else:
            objects.append(doc)
    for index, obj in enumerate(objects):
        if not obj.get("kind"):
            raise CliError(f"{source}: object {index + 1} has no kind")
        if not (obj.get("metadata") or {}).get("name") and not (
            (obj.get("metadata") or {}).get("annotations") or {}
        ).get(keys.ANNOTATION_ALIAS):
            raise CliError(f"{source}: {obj['kind']} {index + 1} has no metadata.name")
    return objects


def _apply_rank(obj: dict) -> int:
    kind = obj.get("kind", "")
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)


def _request_body(obj: dict) -> dict:
    body = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(body.get("metadata") or {})
    for key in _SERVER_OWNED:
        meta.pop(key, None)
    meta.pop("namespace", None)
    body["metadata"] = meta
    return body


def _placement(kind: CliKind, obj: dict, project: str | None, workflow: str | None
               ) -> tuple[str | None, str | None]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if kind.scope == "global":
        return None, None
    project = project or labels.get(keys.LABEL_PROJECT)
    if not project:
        raise CliError(
            f"{kind.kind} {obj['metadata'].get('name')!r}: no project "
            f"(pass --project or set the {keys.LABEL_PROJECT} label)"
        )
    if kind.scope == "workflow":
        workflow = (workflow or ((obj.get("spec") or {}).get("workflowRef") or {}).get("name")
                    or labels.get(keys.LABEL_WORKFLOW))
        if not workflow:
            raise CliError(
                f"{kind.kind} {obj['metadata'].get('name')!r}: no workflow "
                "(pass --workflow or set spec.workflowRef.name)"
            )
    return project, workflow


def refusal(kind: str, name: str | None, message: str) -> str:
    """The server's refusal of object ``kind`` ``name`` as one line naming the object once:
    ``Workflow 'x': spec.stages[0].name: …``; the server's own ``invalid Workflow 'x': ``
    (or ``invalid Stage: ``) before the problems is left out."""
    for said in (f"invalid {kind} {name!r}: ", f"invalid {kind}: "):
        message = message.removeprefix(said)
    return f"{kind} {name!r}: {message}"


def apply_object(client: CycloneClient, obj: dict, project: str | None,
                 workflow: str | None, *, dry_run: bool = False) -> str:
    """Create the object, or update it when it exists; returns what happened.

    ``dry_run``: the server checks the write as if it were made and stores nothing."""
    kind = kind_of_object(obj)
    p, wf = _placement(kind, obj, project, workflow)
    body = _request_body(obj)
    name = body["metadata"].get("name")
    params = {"dryRun": "All"} if dry_run else None
    done = " (server dry run)" if dry_run else ""
    try:
        created = client.request("POST", kind.path(p, wf), params=params, json=body)
        name = (created or {}).get("metadata", {}).get("name", name)
        return f"{kind.kind.lower()}/{name} created{done}"
    except CliError as err:
        if err.status != 409 or not name:
            raise CliError(refusal(kind.kind, name, err.message), status=err.status,
                           causes=err.causes) from err
        taken = err
    if kind.kind == "WorkflowRun":
        return f"workflowrun/{name} unchanged (a run cannot be changed once created)"
    try:
        client.request("PUT", kind.path(p, wf, name), params=params, json=body)
    except CliError as err:
        why = taken if err.status == 404 else err
        raise CliError(refusal(kind.kind, name, why.message), status=why.status,
                       causes=why.causes) from err
    return f"{kind.kind.lower()}/{name} configured{done}"


OPERATIONS = ("pull", "push")


def check_operation(kind: CliKind, operation: str | None) -> None:
    """``--operation`` filters resource types, by one of `OPERATIONS`."""
    if operation is None:
        return
    if kind.plural != "resourcetypes":
        raise CliError("--operation filters resourcetypes only")
    if operation not in OPERATIONS:
        raise CliError(f"--operation: must be pull or push, got {operation!r}")


class DryRun(StrEnum):
    NONE = "none"
    SERVER = "server"


def dry_run_apply(ctx: typer.Context, filename: str, project: str | None,
                  workflow: str | None) -> None:
    """``apply --dry-run=server``: what each object would become, or its problems."""
    docs = lint.documents(filename, read_documents(filename))
    stages = lint.stages_of(docs)
    problems: list[str] = []
    with client_from(ctx) as client:
        client.request("GET", "/healthcheck", api=False)
        for doc in sorted(docs, key=lambda d: _apply_rank(d.obj)):
            done, found = lint.server_verdict(client, apply_object, doc, stages, project,
                                              workflow)
            if done:
                typer.echo(done)
            problems += found
    lint.report(problems)


def register(app: typer.Typer) -> None:
    lint.register(app, read_documents, _apply_rank, apply_object)

    @app.command()
    @handles_errors
    def apply(
        ctx: typer.Context,
        filename: str = options.MANIFEST_FILE,
        project: str | None = options.MANIFEST_PROJECT,
        workflow: str | None = options.MANIFEST_WORKFLOW,
        dry_run: DryRun = typer.Option(DryRun.NONE, "--dry-run",
                                       help="server: the server checks every object and "
                                       "stores nothing."),
    ) -> None:
        """Create or update the objects of a multi-document YAML file.

        Kinds are written in dependency order whatever their order in the file: projects,
        resources and stages before the workflows that name them, runs last."""
        if dry_run == DryRun.SERVER:
            dry_run_apply(ctx, filename, project, workflow)
            return
        objects = sorted(read_documents(filename), key=_apply_rank)
        with client_from(ctx) as client:
            for obj in objects:
                typer.echo(apply_object(client, obj, project, workflow))

    @app.command()
    @handles_errors
    def get(
        ctx: typer.Context,
        kind: str = typer.Argument(..., help="projects, resources, stages, workflows, "
                                   "workflowruns, workflowtriggers, templates, resourcetypes, "
                                   "tenants, integrations, workingpods, executioncontexts (or "
                                   "proj, rsc, stg, wf, wfr, wft)."),
        name: str | None = typer.Argument(None, help="Name of one object."),
        project: str | None = typer.Option(None, "--project", "-p",
                                           help="Project (default: all projects)."),
        workflow: str | None = typer.Option(None, "--workflow", "-w",
                                            help="Workflow (default: all workflows)."),
        output: str = options.OUTPUT,
        no_headers: bool = options.NO_HEADERS,
        sort_by: str | None = options.SORT_BY,
        selector: str | None = typer.Option(None, "--selector", "-l",
                                            help="Label selector, e.g. app=web,tier!=db."),
        since: str | None = typer.Option(None, "--since",
                                         help="Only objects created within this long, "
                                         "e.g. 1h or 2d."),
        phase: str | None = typer.Option(None, "--phase",
                                         help="Runs in these phases, e.g. Failed,Paused."),
        all_tenants: bool = typer.Option(False, "--all-tenants", "-A",
                                         help="Every tenant's workflows, stages, resources, "
                                         "workflowruns, workflowtriggers or workingpods "
                                         "(admin token)."),
        operation: str | None = typer.Option(None, "--operation",
                                             help="resourcetypes: only the types that can "
                                             "pull or push."),
        chunk_size: int = typer.Option(500, "--chunk-size", min=0,
                                       help="workflowruns: read this many per request, "
                                       "each page read at the cluster (0: one request)."),
    ) -> None:
        """Show objects of a kind; one run by name shows its stages and events."""
        cli_kind = lookup_kind(kind)
        check_operation(cli_kind, operation)
        with client_from(ctx) as client:
            if all_tenants:
                if name:
                    raise CliError("--all-tenants lists objects: give no NAME")
                parse_output(output)
                cli_kind, listed = all_tenants_items(client, cli_kind, project, workflow)
                found = filter_objects(listed, selector=selector, since=since, phase=phase,
                                       phase_of=cli_kind.phase, phases=RUN_PHASES)
                print_objects(cli_kind, found, output, no_headers=no_headers, sort_by=sort_by)
                return
            if name:
                obj, path = find_object(client, cli_kind, name, project, workflow)
                if cli_kind.kind == "WorkflowRun" and parse_output(output).tabular:
                    show_run(client, obj, path)
                else:
                    print_object(cli_kind, obj, output, no_headers=no_headers)
                return
            parse_output(output)
            listed = (client.get(cli_kind.path(), operation=operation).get("items") or []
                      if operation else list_objects(client, cli_kind, project, workflow,
                                                     chunk_size=chunk_size))
            found = filter_objects(
                listed, selector=selector,
                since=since, phase=phase, phase_of=cli_kind.phase, phases=RUN_PHASES)
            print_objects(cli_kind, found, output, no_headers=no_headers, sort_by=sort_by)

    @app.command()
    @handles_errors
    def delete(
        ctx: typer.Context,
        kind: str = typer.Argument(..., help="Kind (as for `get`)."),
        name: str = typer.Argument(..., help="Name of the object."),
        project: str | None = options.PROJECT,
        workflow: str | None = options.WORKFLOW,
    ) -> None:
        """Delete an object."""
        cli_kind = lookup_kind(kind)
        with client_from(ctx) as client:
            _, path = find_object(client, cli_kind, name, project, workflow)
            client.delete(path)
        typer.echo(f"{cli_kind.kind.lower()}/{name} deleted")
