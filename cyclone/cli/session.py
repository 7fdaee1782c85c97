"""What every server command shares: settings from flags, env and file; one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from cyclone.cli.config import CliSettings, ConfigError, resolve_settings
from cyclone.cli.errors import CliError

if TYPE_CHECKING:
    from cyclone.cli.client import CycloneClient

P = ParamSpec("P")
R = TypeVar("R")


INTERRUPTED_EXIT_CODE = 130
"""The status of a command ended by Ctrl-C, as a shell reports it (128 + SIGINT)."""


def print_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


class Interrupted(Exception):
    """Ctrl-C, with what the user should know about what goes on without them (a run keeps
    running); told as a plain notice, not as an error."""

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)
        self.message = message


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report a `CliError` as one `error:` line and a non-zero exit status; Ctrl-C as a
    plain notice and status 130."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as err:
            print_error(err.message)
            raise typer.Exit(err.exit_code) from None
        except Interrupted as interrupt:
            typer.echo(interrupt.message, err=True)
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None

    return run


def show_version(asked: bool) -> None:
    if asked:
        from cyclone import __version__

        typer.echo(f"cyclone {__version__}")
        raise typer.Exit()


def settings_from(ctx: typer.Context) -> CliSettings:
    root = ctx.find_root()
    options = root.obj if isinstance(root.obj, dict) else {}
    try:
        return resolve_settings(options.get("server"), options.get("tenant"),
                                options.get("token"), options.get("context"))
    except ConfigError as err:
        raise CliError(err.message) from None


def client_from(ctx: typer.Context) -> CycloneClient:
    from cyclone.cli.client import CycloneClient

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
    _version: bool = typer.Option(
        False, "--version", callback=show_version, is_eager=True, expose_value=False,
        help="Print the client version and exit.",
    ),
) -> None:
    """Cyclone: a Kubernetes-native CI/CD workflow engine."""
    ctx.obj = {"server": server, "tenant": tenant, "token": token, "context": context}
