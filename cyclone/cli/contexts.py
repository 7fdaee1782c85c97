"""`cyclone config`: the CLI's named contexts (which server, tenant and token it uses)."""

from __future__ import annotations

from pathlib import Path

import typer

from cyclone.cli import config as cli_config
from cyclone.cli import options
from cyclone.cli.config import CliConfig, ConfigError, Context, config_path
from cyclone.cli.errors import CliError
from cyclone.cli.output import format_table
from cyclone.cli.session import handles_errors

config_app = typer.Typer(
    help="Named contexts: which server, tenant and token the CLI uses (like kubeconfig).",
    no_args_is_help=True,
)


def read_config() -> CliConfig:
    try:
        return cli_config.read_config()
    except ConfigError as err:
        raise CliError(err.message) from None


def write_config(config: CliConfig) -> None:
    try:
        cli_config.write_config(config)
    except OSError as exc:
        raise CliError(f"cannot write {config_path()}: {exc.strerror or exc}") from None


def _auth_of(context: Context) -> str:
    if context.token_file:
        return f"file:{context.token_file}"
    return "token" if context.token else "none"


@config_app.command("get-contexts")
@handles_errors
def get_contexts(
    output: str = typer.Option("table", "-o", "--output", help="table or name."),
    no_headers: bool = options.NO_HEADERS,
) -> None:
    """List the contexts; `*` marks the current one."""
    if output not in ("table", "name"):
        raise CliError(f"unknown output format {output!r} (one of: table, name)")
    config = read_config()
    if output == "name":
        for context in config.contexts:
            typer.echo(context.name)
        return
    rows = [["*" if c.name == config.current else "", c.name, c.server, c.tenant or "",
             _auth_of(c)] for c in config.contexts]
    for line in format_table(["CURRENT", "NAME", "SERVER", "TENANT", "AUTH"], rows,
                             no_headers=no_headers):
        typer.echo(line)


@config_app.command("current-context")
@handles_errors
def current_context() -> None:
    """Print the name of the current context."""
    config = read_config()
    if config.current_context() is None:
        raise CliError(f"no current context in {config_path()} "
                       "(set one with `cyclone config use-context NAME`)")
    typer.echo(config.current)


@config_app.command("use-context")
@handles_errors
def use_context(name: str = typer.Argument(..., help="The context to make current.")) -> None:
    """Make NAME the current context."""
    config = read_config()
    if config.find(name) is None:
        known = ", ".join(c.name for c in config.contexts) or "none"
        raise CliError(f"no context named {name!r} (known: {known})")
    config.current = name
    write_config(config)
    typer.echo(f"switched to context {name!r}")


@config_app.command("set-context")
@handles_errors
def set_context(
    name: str = typer.Argument(..., help="The context to create or change."),
    server: str | None = typer.Option(None, "--server", help="URL of the Cyclone server."),
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant to act in."),
    token: str | None = typer.Option(None, "--token", help="Bearer token, stored in the file."),
    token_file: str | None = typer.Option(
        None, "--token-file", help="File holding the token, read on each command."),
    current: bool = typer.Option(False, "--current", help="Also make it the current context."),
) -> None:
    """Create the context NAME, or change the settings given of an existing one."""
    if token and token_file:
        raise CliError("give either --token or --token-file, not both")
    config = read_config()
    existing = config.find(name)
    if existing is None and not server:
        raise CliError(f"context {name!r} does not exist yet: give its --server")
    if token_file:
        token_file = str(Path(token_file).expanduser().resolve())
    base = existing or Context(name, server or "")
    keep_auth = token is None and token_file is None
    config.upsert(Context(
        name, (server or base.server).rstrip("/"),
        tenant=tenant if tenant is not None else base.tenant,
        token=base.token if keep_auth else token,
        token_file=base.token_file if keep_auth else token_file,
    ))
    if current or config.current_context() is None:
        config.current = name
    write_config(config)
    suffix = " (current)" if config.current == name else ""
    typer.echo(f"context {name!r} {'changed' if existing else 'created'}{suffix}")


@config_app.command("delete-context")
@handles_errors
def delete_context(name: str = typer.Argument(..., help="The context to delete.")) -> None:
    """Delete the context NAME (the current context is then unset)."""
    config = read_config()
    was_current = config.current == name
    if not config.remove(name):
        raise CliError(f"no context named {name!r}")
    write_config(config)
    note = "; no context is current now" if was_current else ""
    typer.echo(f"context {name!r} deleted{note}")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
