"""`cyclone label` and `cyclone annotate`: change an object's labels or annotations, as
kubectl does (`key=value` sets, `key-` removes), through the object's update route. On a
run only its labels and annotations change; the server refuses Cyclone's own."""

from __future__ import annotations

import typer

from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import find_object, lookup_kind
from cyclone.cli.session import client_from, handles_errors

CHANGES_HELP = "key=value to set, key- to remove (repeatable)."


def changed(current: dict[str, str], changes: list[str], overwrite: bool) -> dict[str, str]:
    """`current` with `changes` applied; a key given a new value without `overwrite`, or a
    change that is neither `key=value` nor `key-`, is an error."""
    result = dict(current)
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep:
            if change.endswith("-") and len(change) > 1:
                result.pop(change[:-1], None)
                continue
            raise CliError(f"{change!r} is neither KEY=VALUE nor KEY-")
        if not key:
            raise CliError(f"{change!r} has no key")
        if key in result and result[key] != value and not overwrite:
            raise CliError(f"{key!r} is already {result[key]!r}: pass --overwrite to change it")
        result[key] = value
    return result


def update_metadata(ctx: typer.Context, kind: str, name: str, changes: list[str],
                    project: str | None, workflow: str | None, overwrite: bool,
                    field: str) -> None:
    if not changes:
        raise CliError(f"give at least one change ({CHANGES_HELP})")
    cli_kind = lookup_kind(kind)
    with client_from(ctx) as client:
        obj, path = find_object(client, cli_kind, name, project, workflow)
        meta = obj.get("metadata") or {}
        body = {"metadata": {"name": meta.get("name"),
                             "labels": dict(meta.get("labels") or {}),
                             "annotations": dict(meta.get("annotations") or {})},
                "spec": obj.get("spec") or {}}
        body["metadata"][field] = changed(body["metadata"][field], changes, overwrite)
        client.put(path, body)
    typer.echo(f"{cli_kind.kind.lower()}/{name} {'labeled' if field == 'labels' else 'annotated'}")


def _command(field: str):
    def run(ctx: typer.Context,
            kind: str = typer.Argument(..., help="Kind (as for `get`)."),
            name: str = typer.Argument(..., help="Name of the object."),
            changes: list[str] = typer.Argument(None, help=CHANGES_HELP),
            project: str | None = options.PROJECT,
            workflow: str | None = options.WORKFLOW,
            overwrite: bool = typer.Option(False, "--overwrite",
                                           help="Change a key that has a value.")) -> None:
        update_metadata(ctx, kind, name, changes or [], project, workflow, overwrite, field)

    run.__doc__ = (f"Set or remove {field} of an object (of a run too: only its {field} "
                   "change).")
    return handles_errors(run)


def register(app: typer.Typer) -> None:
    app.command("label")(_command("labels"))
    app.command("annotate")(_command("annotations"))
