"""The REST server of `cyclone up`: the `serve` hook that `cyclone.up.up` runs.

It serves `create_app` with the log and artifact routes on the options' host and port,
collects stage logs and sweeps expired artifacts, keeps the admin token in
`<data-dir>/admin-token`, and writes the CLI's config file (server URL and admin token)
so that `cyclone` works on this machine without flags.
"""

from __future__ import annotations

import asyncio
import logging

from cyclone.api import keys
from cyclone.cli.config import write_cli_config
from cyclone.components import request_limits
from cyclone.engine.signing import prepare_engine_key
from cyclone.server import create_app, serve
from cyclone.server.artifacts.routes import retention_from_days
from cyclone.server.auth import load_or_create_admin_token
from cyclone.server.logs.services import (
    log_and_artifact_routers,
    run_log_and_artifact_services,
)
from cyclone.up import UpContext

log = logging.getLogger("cyclone.up")


def local_url(host: str, port: int) -> str:
    """How a client on this machine reaches a server listening on `host`."""
    reachable = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in reachable and not reachable.startswith("["):
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}"


async def serve_api(ctx: UpContext, *, write_config: bool = True) -> None:
    """Serve the API and run its background services until cancelled."""
    options = ctx.options
    url = local_url(options.host, options.port)
    admin_token = load_or_create_admin_token(ctx.data_dir)
    app = create_app(cluster=ctx.cluster, data_dir=ctx.data_dir, admin_token=admin_token,
                     extra_routers=log_and_artifact_routers(), server_url=url,
                     engine_key_namespace=ctx.engine.config.system_namespace,
                     artifact_retention=retention_from_days(options.artifact_retention_days),
                     limits=request_limits(options))
    await prepare_engine_key(ctx.cluster, ctx.engine.config.system_namespace)
    if write_config:
        path = write_cli_config(url, admin_token, keys.DEFAULT_TENANT)
        log.info("CLI configured in %s", path)
    async with asyncio.TaskGroup() as group:
        group.create_task(serve(app, options.host, options.port), name="rest-api")
        group.create_task(run_log_and_artifact_services(app.state.cyclone),
                          name="logs-and-artifacts")
