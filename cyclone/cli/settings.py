"""`cyclone settings`: the server's effective settings, as an admin reads them."""

from __future__ import annotations

import json

import typer

from cyclone.cli.session import client_from, handles_errors

NONE = "<none>"


def setting_rows(settings: dict) -> list[list[str]]:
    """SETTING and VALUE lines of `GET /settings`, nested fields dotted."""
    rows: list[list[str]] = []
    for key, value in settings.items():
        if key == "defaultResourceQuota":
            rows.append([key, ",".join(f"{k}={v}" for k, v in value.items()) or NONE])
        elif isinstance(value, dict):
            rows += [[f"{key}.{k}", str(v) if v != "" else NONE] for k, v in value.items()]
        elif isinstance(value, list):
            rows.append([key, ",".join(str(v) for v in value) or NONE])
        elif isinstance(value, bool):
            rows.append([key, str(value).lower()])
        else:
            rows.append([key, str(value) if value != "" else NONE])
    return rows


def register(app: typer.Typer) -> None:
    @app.command("settings")
    @handles_errors
    def settings(
        ctx: typer.Context,
        output: str = typer.Option("table", "--output", "-o", help="table, yaml or json."),
    ) -> None:
        """Show the server's effective settings (admin): whether new tenants get the control
        cluster opened, their default PVC and quota, the runs' web link template and the
        notification endpoints' names."""
        if output not in ("table", "yaml", "json"):
            raise typer.BadParameter(f"{output!r} is not table, yaml or json",
                                     param_hint="'--output'")
        with client_from(ctx) as client:
            found = client.get("/settings")
        if output == "json":
            typer.echo(json.dumps(found, indent=2))
        elif output == "yaml":
            import yaml

            typer.echo(yaml.safe_dump(found, sort_keys=False), nl=False)
        else:
            rows = [["SETTING", "VALUE"], *setting_rows(found)]
            width = max(len(r[0]) for r in rows)
            for name, value in rows:
                typer.echo(f"{name.ljust(width)}   {value}")
