"""The REST server of `cyclone up`: the `serve` hook that `cyclone.up.up` runs.

It serves `create_app` with the log and artifact routes on the socket `up` bound, collects
stage logs and sweeps expired artifacts, keeps the admin token in `<data-dir>/admin-token`,
records this instance as a CLI context (see `instance_context_name`) and, once the engine
is ready, prints one banner saying where everything is and what to run next.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from cyclone.api import keys
from cyclone.cli.config import ConfigError, InstanceContext, save_instance_context
from cyclone.components import request_limits
from cyclone.engine.signing import prepare_engine_key
from cyclone.server import create_app, serve
from cyclone.server.artifacts.routes import retention_from_days
from cyclone.server.auth import ADMIN_TOKEN_FILE, load_or_create_admin_token
from cyclone.server.logs.services import (
    log_and_artifact_routers,
    run_log_and_artifact_services,
)
from cyclone.ui.app import mount_ui
from cyclone.up import UpContext, local_url, up_server_settings

log = logging.getLogger("cyclone.up")

DEFAULT_PORT = 7099
EXAMPLE = Path("examples") / "diamond.yaml"


def instance_context_name(port: int) -> str:
    """The CLI context of the instance on `port`: ``local``, or ``local-PORT`` off 7099."""
    return "local" if port == DEFAULT_PORT else f"local-{port}"


def example_path(cwd: Path) -> str | None:
    """The first example to apply, as the user can type it from `cwd`, if there is one."""
    for root in (cwd, Path(__file__).resolve().parents[1]):
        candidate = root / EXAMPLE
        if candidate.is_file():
            return str(EXAMPLE) if root == cwd else str(candidate)
    return None


def banner(url: str, data_dir: Path, context: InstanceContext | None, context_problem: str,
           example: str | None, sign_in: str | None = None) -> str:
    """What `cyclone up` prints once when it is ready (`sign_in`: the one-time link that
    signs the admin in to the web UI)."""
    lines = [f"Cyclone is ready at {url}"]
    if sign_in:
        lines.append(f"  web UI:       {sign_in}  (one-time sign-in link)")
    lines += [f"  data dir:     {data_dir}",
             f"  admin token:  {data_dir / ADMIN_TOKEN_FILE}"]
    if context is None:
        lines.append(f"  CLI context:  not written ({context_problem}); use --server {url} "
                     f"--token \"$(cat {data_dir / ADMIN_TOKEN_FILE})\"")
    elif context.current:
        lines.append(f"  CLI context:  {context.name} (current) in {context.path}")
    else:
        lines.append(f"  CLI context:  {context.name} in {context.path}, not current; "
                     f"switch to it with: cyclone config use-context {context.name}")
    apply = f"cyclone apply -f {example}" if example else "cyclone apply -f <workflow.yaml>"
    lines.append(f"Next: {apply}   then: cyclone get wfr")
    return "\n".join(lines)


def write_context(url: str, data_dir: Path, port: int,
                  make_current: bool) -> tuple[InstanceContext | None, str]:
    """Record this instance as a CLI context; (None, why) when the config cannot be
    written (a config file that cannot be parsed is never overwritten)."""
    try:
        written = save_instance_context(instance_context_name(port), url, keys.DEFAULT_TENANT,
                                        data_dir / ADMIN_TOKEN_FILE, make_current=make_current)
    except ConfigError as exc:
        return None, exc.message
    except OSError as exc:
        return None, f"cannot write the CLI config: {exc.strerror or exc}"
    return written, ""


async def serve_api(ctx: UpContext) -> None:
    """Serve the API and run its background services until cancelled."""
    options = ctx.options
    url = local_url(options.host, options.port)
    admin_token = load_or_create_admin_token(ctx.data_dir)
    app = create_app(cluster=ctx.cluster, data_dir=ctx.data_dir, admin_token=admin_token,
                     extra_routers=log_and_artifact_routers(), server_url=url,
                     engine_key_namespace=ctx.engine.config.system_namespace,
                     artifact_retention=retention_from_days(options.artifact_retention_days),
                     limits=request_limits(options),
                     server_settings=up_server_settings(options, ctx.engine.config))
    ui = mount_ui(app, admin_token)
    sign_in = f"{url}/login/link?code={ui.links.issue(admin_token)}"
    await prepare_engine_key(ctx.cluster, ctx.engine.config.system_namespace)
    context, problem = write_context(url, ctx.data_dir, options.port, options.set_context)
    if context is None:
        log.warning("CLI context not written: %s", problem)
    async with asyncio.TaskGroup() as group:
        group.create_task(serve(app, options.host, options.port, sock=ctx.listener),
                          name="rest-api")
        group.create_task(run_log_and_artifact_services(app.state.cyclone),
                          name="logs-and-artifacts")
        await ctx.engine.ready.wait()
        log.info("serving", extra={"url": url, "data_dir": str(ctx.data_dir),
                                   "context": context.name if context else None})
        print(banner(url, ctx.data_dir, context, problem, example_path(Path(os.getcwd())),
                     sign_in),
              flush=True)
