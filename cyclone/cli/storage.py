"""`cyclone storage usage|cleanup`: the tenant PVC, as its watchdog measures it, and the
collection of finished runs' data from it."""

from __future__ import annotations

import typer

from cyclone.cli import options
from cyclone.cli.output import print_records
from cyclone.cli.session import client_from, handles_errors


def usage_rows(usage: dict) -> list[list[str]]:
    """One row per folder of the PVC, largest first, after the totals."""
    rows = [["(total)", str(usage.get("total", ""))], ["(used)", str(usage.get("used", ""))]]
    items = sorted((usage.get("items") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return rows + [[folder, str(size)] for folder, size in items]


def register(app: typer.Typer) -> None:
    storage_app = typer.Typer(help="The tenant PVC: its usage, and cleaning finished runs' "
                              "data from it.", no_args_is_help=True)
    app.add_typer(storage_app, name="storage")

    @storage_app.command("usage")
    @handles_errors
    def usage(ctx: typer.Context, output: str = options.OUTPUT,
              no_headers: bool = options.NO_HEADERS) -> None:
        """The tenant PVC's size, what is used, and the size of each top folder (bytes), as
        its PVC watchdog last reported them."""
        with client_from(ctx) as client:
            found = client.get("/storage/usages")
        print_records([found], output, headers=["FOLDER", "BYTES"],
                      rows=lambda records: usage_rows(records[0]),
                      name=lambda r: "storageusage", no_headers=no_headers)

    @storage_app.command("cleanup")
    @handles_errors
    def cleanup(ctx: typer.Context) -> None:
        """Remove the data of the tenant's finished runs from its PVC now, without waiting
        for the GC delay (the engine's GC pods do it; each run then shows cleaned)."""
        with client_from(ctx) as client:
            started = client.post("/storage/cleanup") or {}
        runs = started.get("workflowruns") or []
        if not runs:
            typer.echo(f"tenant/{started.get('tenant')}: no finished run's data to clean")
            return
        for run in runs:
            typer.echo(f"workflowrun/{run} cleanup started")
