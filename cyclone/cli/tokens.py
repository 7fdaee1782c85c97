"""`cyclone token create|list|revoke`: the bearer tokens of a tenant.

A token is shown once, when it is created, alone on stdout (so that
`TOKEN=$(cyclone token create devops)` works); the server keeps only what lets it check
one, so `list` shows ids and descriptions, never a token.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from cyclone.cli import options
from cyclone.cli.kinds import time_since
from cyclone.cli.output import print_records
from cyclone.cli.session import client_from, handles_errors


def token_rows(items: list[dict], now: datetime) -> list[list[str]]:
    """ID, DESCRIPTION and AGE of each token, oldest first."""
    ordered = sorted(items, key=lambda t: (t.get("createdAt") or "", t.get("id") or ""))
    return [[str(token.get("id") or ""), str(token.get("description") or ""),
             time_since(token.get("createdAt"), now)] for token in ordered]


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
        output: str = options.OUTPUT,
        no_headers: bool = options.NO_HEADERS,
    ) -> None:
        """List a tenant's tokens: ids and descriptions, never the tokens themselves."""
        with client_from(ctx) as client:
            items = client.items(f"/tenants/{tenant}/tokens")
        print_records(items, output, headers=["ID", "DESCRIPTION", "AGE"],
                      rows=lambda records: token_rows(records, datetime.now(UTC)),
                      name=lambda token: f"token/{token.get('id')}", no_headers=no_headers)

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
