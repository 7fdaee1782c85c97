"""`cyclone token create|list|revoke`: the bearer tokens of a tenant.

A token is shown once, when it is created, alone on stdout (so that
`TOKEN=$(cyclone token create devops)` works); the server keeps only what lets it check
one, so `list` shows ids and descriptions, never a token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
import yaml

from cyclone.cli.client import CliError
from cyclone.cli.kinds import human_duration, parse_time
from cyclone.cli.output import format_table, terminal_width
from cyclone.cli.session import client_from, handles_errors

LIST_FORMATS = ("table", "json", "yaml", "name")


def token_rows(items: list[dict], now: datetime) -> list[list[str]]:
    """ID, DESCRIPTION and AGE of each token, oldest first."""
    ordered = sorted(items, key=lambda t: (t.get("createdAt") or "", t.get("id") or ""))
    rows = []
    for token in ordered:
        created = parse_time(token.get("createdAt"))
        age = human_duration((now - created).total_seconds()) if created else ""
        rows.append([str(token.get("id") or ""), str(token.get("description") or ""), age])
    return rows


def register(app: typer.Typer) -> None:
    token_app = typer.Typer(help="Create, list and revoke the API tokens of a tenant.",
                            no_args_is_help=True)
    app.add_typer(token_app, name="token")

    @token_app.command("create")
    @handles_errors
    def create(
        ctx: typer.Context,
        tenant: str = typer.Argument(..., help="Tenant the token acts as."),
        description: str = typer.Option("", "--description", "-d",
                                        help="What the token is for (shown by list)."),
    ) -> None:
        """Create a token (admin) and print it, once, alone on stdout."""
        with client_from(ctx) as client:
            issued = client.post(f"/tenants/{tenant}/tokens", {"description": description})
        typer.echo(issued["token"])
        typer.echo(f"token/{issued['id']} created for tenant {tenant}; it is not shown again",
                   err=True)

    @token_app.command("list")
    @handles_errors
    def list_tokens(
        ctx: typer.Context,
        tenant: str = typer.Argument(..., help="Tenant whose tokens to list."),
        output: str = typer.Option("table", "--output", "-o",
                                   help="table, json, yaml or name."),
        no_headers: bool = typer.Option(False, "--no-headers", help="Table without header."),
    ) -> None:
        """List a tenant's tokens: ids and descriptions, never the tokens themselves."""
        with client_from(ctx) as client:
            items = client.items(f"/tenants/{tenant}/tokens")
        fmt = output.strip().lower()
        if fmt == "json":
            typer.echo(json.dumps(items, indent=2))
        elif fmt == "yaml":
            typer.echo(yaml.safe_dump(items, sort_keys=False), nl=False)
        elif fmt == "name":
            for token in items:
                typer.echo(f"token/{token.get('id')}")
        elif fmt == "table":
            for line in format_table(["ID", "DESCRIPTION", "AGE"],
                                     token_rows(items, datetime.now(UTC)),
                                     no_headers=no_headers, width=terminal_width()):
                typer.echo(line)
        else:
            raise CliError(f"unknown output format {output!r} "
                           f"(one of: {', '.join(LIST_FORMATS)})")

    @token_app.command("revoke")
    @handles_errors
    def revoke(
        ctx: typer.Context,
        tenant: str = typer.Argument(..., help="Tenant of the token."),
        token_id: str = typer.Argument(..., metavar="ID", help="Token id (from list)."),
    ) -> None:
        """Revoke a token: requests that bear it are refused from now on."""
        with client_from(ctx) as client:
            client.delete(f"/tenants/{tenant}/tokens/{token_id}")
        typer.echo(f"token/{token_id} revoked")
