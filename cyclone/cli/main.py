"""The `cyclone` command.

Help and usage errors are plain text, as kubectl and click print them: Typer renders
them with rich unless `TYPER_USE_RICH` says otherwise, which costs every `--help` the
import of rich's console, markdown and table modules (about half of `cyclone --help`'s
time). `TYPER_USE_RICH=1` brings the rich panels back. Tables, progress and live views
still use rich.
"""

from __future__ import annotations

import enum
import inspect
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import PurePath
from typing import Any, get_args, get_origin

os.environ.setdefault("TYPER_USE_RICH", "0")

import typer
import typer.core
import typer.main

try:
    from typer._click.exceptions import ClickException
except ImportError:
    from click import ClickException

from cyclone.cli import (
    admin,
    artifacts,
    components,
    contexts,
    describe,
    health,
    labels,
    logs,
    objects,
    projects,
    runs,
    settings,
    storage,
    tokens,
    triggers,
)
from cyclone.cli.errors import CliError
from cyclone.cli.session import (
    INTERRUPTED_EXIT_CODE,
    client_from,
    global_options,
    handles_errors,
    print_error,
)

PLAIN_TYPE_NAMES = ((bool, "BOOLEAN"), (int, "INTEGER"), (float, "FLOAT"), (str, "TEXT"))
"""How help names the value an option takes, as click and kubectl do (bool before int: a
bool is an int)."""


def plain_type_name(annotation: Any) -> str:
    """TEXT, INTEGER, FLOAT… for a parameter's type; a list names its items (the option
    is repeated), an enum its values."""
    if get_origin(annotation) in (list, tuple, set, frozenset):
        items = [a for a in get_args(annotation) if a is not Ellipsis]
        return " ".join(plain_type_name(a) for a in items) or "TEXT"
    if not isinstance(annotation, type):
        return "TEXT"
    if issubclass(annotation, enum.Enum):
        return "|".join(str(member.value) for member in annotation)
    if issubclass(annotation, PurePath):
        return "PATH"
    if issubclass(annotation, datetime):
        return "DATETIME"
    for base, name in PLAIN_TYPE_NAMES:
        if issubclass(annotation, base):
            return name
    return annotation.__name__.upper()


def _plain_display_type(param: Any, ctx: Any) -> str:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    descriptor = param.type_descriptor
    if descriptor.is_choice and descriptor.choices:
        return "|".join(str(getattr(c, "value", c)) for c in descriptor.choices)
    return plain_type_name(descriptor.annotation)


def use_plain_type_names() -> None:
    """Typer from 0.2x names the type of every parameter as Python does (`<str>`,
    `<list[str]>`, `<bool>` even for flags); Cyclone's help names it as click does, and
    nothing for a flag. An explicit ``metavar`` still wins. Older Typers already do so."""
    parameter = getattr(typer.core, "_TyperParameter", None)
    if parameter is not None and callable(getattr(parameter, "display_type", None)):
        parameter.display_type = _plain_display_type
    argument = getattr(typer.core, "TyperArgument", None)
    if argument is not None and callable(getattr(argument, "_usage_display_name", None)):
        argument._usage_display_name = _usage_display_name


def _usage_display_name(argument: Any) -> str:
    """An argument in a usage line as kubectl writes it: `KIND [NAME]`, not `{kind} [name]`."""
    name = argument.metavar or argument.display_name_raw.upper()
    if not argument.required:
        name = f"[{name}]"
    return name + ("..." if argument.nargs != 1 else "")


use_plain_type_names()


class _CoercionOnFirstValue:
    """A parameter's coercion as Typer makes it, built only once a value is given: a value
    not given is None, or () for a repeated parameter, as Typer's own coercion returns."""

    def __init__(self, parameter: Any, build: Callable[[Any], Any]) -> None:
        self.parameter = parameter
        self.build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        return self.build(self.parameter).coerce(value, param=param, ctx=ctx)


def coerce_missing_values_without_pydantic() -> None:
    """Typer from 0.29 coerces each parameter through a pydantic TypeAdapter that it builds
    when the parameter is first processed, given or not; `cyclone run --help` processes the
    global options first, so pydantic (a third of the start) was imported for none of them.
    The adapter is now built for the first value given. Older Typers have no adapters."""
    parameter = getattr(typer.core, "_TyperParameter", None)
    build = getattr(parameter, "get_runtime_param", None)
    if callable(build):
        parameter.get_runtime_param = lambda param: _CoercionOnFirstValue(param, build)


coerce_missing_values_without_pydantic()


class _CommandBuiltOnUse(typer.core.TyperCommand):
    """A command whose parameters Typer reads from its function's signature only when they
    are first needed (the command runs, or shows its own help): the help of the whole CLI
    lists a command by its name and help text alone, and reading all 112 signatures was
    about a tenth of `cyclone --help`. Every other setting is Typer's, from the same
    command info."""

    def __init__(self, build: Callable[[], Any], **settings: Any) -> None:
        self._build = build
        self._built: Any = None
        super().__init__(**settings)

    def _command(self) -> Any:
        if self._built is None:
            self._built = self._build()
        return self._built

    @property
    def params(self) -> list[Any]:
        return self._command().params

    @params.setter
    def params(self, _value: Any) -> None:
        """Set by the base class to the empty list this command was made with."""

    @property
    def callback(self) -> Any:
        return self._command().callback

    @callback.setter
    def callback(self, _value: Any) -> None:
        """Set by the base class to the None this command was made with."""


def build_commands_on_use() -> None:
    """Typer builds every command's click parameters when it makes the CLI; here a plain
    command gets them when first needed. A command with a class of its own is built as
    Typer builds it."""
    build = getattr(typer.main, "get_command_from_info", None)
    if not callable(build):
        return

    def command_from_info(command_info: Any, **options: Any) -> Any:
        callback = command_info.callback
        if command_info.cls not in (None, typer.core.TyperCommand) or callback is None:
            return build(command_info, **options)
        use_help = command_info.help
        use_help = inspect.getdoc(callback) if use_help is None else inspect.cleandoc(use_help)
        return _CommandBuiltOnUse(
            lambda: build(command_info, **options),
            name=command_info.name or typer.main.get_command_name(callback.__name__),
            context_settings=command_info.context_settings, help=use_help,
            epilog=command_info.epilog, short_help=command_info.short_help,
            options_metavar=command_info.options_metavar,
            add_help_option=command_info.add_help_option,
            no_args_is_help=command_info.no_args_is_help, hidden=command_info.hidden,
            deprecated=command_info.deprecated,
            rich_markup_mode=options.get("rich_markup_mode", typer.core.DEFAULT_MARKUP_MODE),
            rich_help_panel=command_info.rich_help_panel,
        )

    typer.main.get_command_from_info = command_from_info


build_commands_on_use()


class CycloneApp(typer.Typer):
    """A Typer app whose usage errors, like every other error, are one `error: …` line."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().__call__(*args, **kwargs)
        except ClickException as err:
            hint = f" (see `{err.ctx.command_path} --help`)" if getattr(err, "ctx", None) else ""
            print_error(f"{err.format_message()}{hint}")
            sys.exit(err.exit_code)
        except typer.Abort as err:
            if isinstance(err.__cause__, KeyboardInterrupt):
                typer.echo("interrupted", err=True)
                sys.exit(INTERRUPTED_EXIT_CODE)
            print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = CycloneApp(
    name="cyclone",
    help="Cyclone: a Kubernetes-native CI/CD workflow engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.callback()(global_options)


@app.command()
@handles_errors
def version(ctx: typer.Context) -> None:
    """Print the version of this client and, when it answers, of the server."""
    from cyclone import __version__

    typer.echo(f"Client Version: {__version__}")
    try:
        with client_from(ctx) as client:
            answer = client.request("GET", "/version", api=False)
    except CliError as err:
        typer.echo(f"Server Version: unknown ({err.message})", err=True)
        return
    server = answer.get("version") if isinstance(answer, dict) else None
    typer.echo(f"Server Version: {server or 'unknown'}")


@app.command()
def crds() -> None:
    """Print the CustomResourceDefinitions of cyclone.dev/v1alpha1 as YAML."""
    from cyclone.api.crds import render_crds_yaml

    typer.echo(render_crds_yaml(), nl=False)


@app.command()
def up(
    data_dir: str = typer.Option("./.cyclone", "--data-dir", help="Where all state lives."),
    port: int = typer.Option(7099, "--port", help="Port of the REST API."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the server listens on."),
    runtime: str = typer.Option(
        "host", "--runtime", help="Node agent runtime: host, fake, podman or docker."),
    kubeconfig: str | None = typer.Option(
        None, "--kubeconfig",
        help="Run against this Kubernetes cluster instead of the embedded one.",
    ),
    node_agent: bool = typer.Option(
        False, "--node-agent", help="With --kubeconfig: also run a node agent as a node."
    ),
    log_client_ca_file: str | None = typer.Option(
        None, "--log-client-ca-file",
        help="With --kubeconfig --node-agent: serve pod logs to the API server, only to "
             "clients with a certificate signed by this CA (the CA of its "
             "--kubelet-client-certificate). Without it, logs are not served through the "
             "API server.",
    ),
    artifact_retention_days: float = components.ARTIFACT_RETENTION_DAYS,
    max_body_bytes: int = components.MAX_BODY_BYTES,
    max_artifact_bytes: int = components.MAX_ARTIFACT_BYTES,
    max_webhook_bytes: int = components.MAX_WEBHOOK_BYTES,
    sandbox_uid: int = components.SANDBOX_UID,
    sandbox_gid: int = components.SANDBOX_GID,
    set_context: bool = typer.Option(
        False, "--set-context",
        help="Make this instance's CLI context (local, or local-PORT) current even when "
             "another context is. Without it, it becomes current only if none is.",
    ),
    open_control_cluster: bool = components.OPEN_CONTROL_CLUSTER,
    default_pvc_size: str = components.DEFAULT_PVC_SIZE,
    default_storage_class: str = components.DEFAULT_STORAGE_CLASS,
    default_quota: str = components.DEFAULT_QUOTA,
    web_url_template: str | None = components.WEB_URL_TEMPLATE,
    notification_endpoint: list[str] = components.NOTIFICATION_ENDPOINT,
    pod_pending_timeout: float | None = components.POD_PENDING_TIMEOUT,
    local_path_provisioner: bool | None = typer.Option(
        None, "--local-path-provisioner/--no-local-path-provisioner",
        help="With --kubeconfig: give pending claims of no storage class (or of class "
             "cyclone-local-path) hostPath volumes on this machine, for a one-node cluster "
             "without a provisioner. On by default with --node-agent."),
    local_path_dir: str | None = typer.Option(
        None, "--local-path-dir",
        help="With --local-path-provisioner (no node agent): where the volumes are "
             "(default <data-dir>/volumes)."),
    log_level: str = components.LOG_LEVEL,
    log_format: str = components.LOG_FORMAT,
) -> None:
    """Start Cyclone in one process: embedded cluster, node agent, engine and server.

    One process per data dir (a second one is refused). Logs go to stderr; the banner with
    the URL, the admin token file and the CLI context goes to stdout once ready.
    """
    from cyclone.up import UpOptions, run_up
    from cyclone.up_server import serve_api

    run_up(
        UpOptions(
            data_dir=data_dir,
            port=port,
            host=host,
            runtime=runtime,
            kubeconfig=kubeconfig,
            node_agent=node_agent,
            log_client_ca_file=log_client_ca_file,
            artifact_retention_days=artifact_retention_days,
            max_body_bytes=max_body_bytes,
            max_artifact_bytes=max_artifact_bytes,
            max_webhook_bytes=max_webhook_bytes,
            sandbox_uid=sandbox_uid,
            sandbox_gid=sandbox_gid,
            log_level=log_level,
            log_format=log_format,
            set_context=set_context,
            open_control_cluster=open_control_cluster,
            default_pvc_size=default_pvc_size,
            default_storage_class=default_storage_class,
            default_quota=default_quota,
            web_url_template=web_url_template or None,
            notification_endpoints=tuple(notification_endpoint),
            pod_pending_timeout=pod_pending_timeout,
            local_path_provisioner=local_path_provisioner,
            local_path_dir=local_path_dir,
        ),
        serve=serve_api,
    )


objects.register(app)
runs.register(app)
logs.register(app)
admin.register(app)
components.register(app)
triggers.register(app)
describe.register(app)
contexts.register(app)
artifacts.register(app)
tokens.register(app)
storage.register(app)
labels.register(app)
projects.register(app)
settings.register(app)
health.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
