"""What every server command shares: settings from flags, env and file; one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from cyclone.cli.client import CliError, CycloneClient
from cyclone.cli.config import CliSettings, ConfigError, resolve_settings

P = ParamSpec("P")
R = TypeVar("R")


def print_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report a `CliError` (or an interrupt) as one line and a non-zero exit status."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as err:
            print_error(err.message)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None

    return run


def settings_from(ctx: typer.Context) -> CliSettings:
    root = ctx.find_root()
    options = root.obj if isinstance(root.obj, dict) else {}
    try:
        return resolve_settings(options.get("server"), options.get("tenant"),
                                options.get("token"), options.get("context"))
    except ConfigError as err:
        raise CliError(err.message) from None


def client_from(ctx: typer.Context) -> CycloneClient:
    return CycloneClient(settings_from(ctx))


def global_options(
    ctx: typer.Context,
    server: str | None = typer.Option(
        None, "--server", envvar="CYCLONE_SERVER",
        help="URL of the Cyclone server (default: config file, else http://127.0.0.1:7099).",
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", envvar="CYCLONE_TENANT", help="Tenant to act in (default: system).",
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="CYCLONE_TOKEN", help="Bearer token (default: config file).",
    ),
    context: str | None = typer.Option(
        None, "--context", envvar="CYCLONE_CONTEXT",
        help="Context of the config file to use (default: its current context).",
    ),
) -> None:
    """Cyclone: a Kubernetes-native CI/CD workflow engine."""
    ctx.obj = {"server": server, "tenant": tenant, "token": token, "context": context}
