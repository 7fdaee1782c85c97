"""The `cyclone` command."""

from __future__ import annotations

import sys
from typing import Any

import typer

try:
    from typer._click.exceptions import ClickException
except ImportError:
    from click import ClickException

from cyclone.cli import admin, components, contexts, describe, logs, objects, runs, triggers
from cyclone.cli.session import global_options, print_error


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
        except typer.Abort:
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
def crds() -> None:
    """Print the CustomResourceDefinitions of cyclone.dev/v1alpha1 as YAML."""
    from cyclone.api.crds import render_crds_yaml

    typer.echo(render_crds_yaml(), nl=False)


@app.command()
def up(
    data_dir: str = typer.Option("./.cyclone", "--data-dir", help="Where all state lives."),
    port: int = typer.Option(7099, "--port", help="Port of the REST API."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the server listens on."),
    runtime: str = typer.Option("host", "--runtime", help="Node agent runtime: host or fake."),
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
        ),
        serve=serve_api,
    )


objects.register(app)
runs.register(app)
logs.register(app)
admin.register(app)
components.register(app)
triggers.register(app)
contexts.register(app)
describe.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
