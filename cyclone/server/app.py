"""The FastAPI application of the Cyclone server, and serving it in the current loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from cyclone import __version__
from cyclone.api import keys
from cyclone.api.tenant import TenantSpec
from cyclone.engine.core.images import DEFAULT_RESOLVER_IMAGES
from cyclone.engine.core.serversettings import ServerSettings
from cyclone.kube import errors
from cyclone.kube.protocol import Cluster
from cyclone.server import (
    catalog,
    cleancache,
    clusters,
    crosstenant,
    delegation,
    integrations,
    metrics,
    pvcwatcher,
    run_events,
    run_stream,
    runs,
    scmrepos,
    settings,
    stats,
    storage,
    templates,
    tenants,
    webhooks,
)
from cyclone.server.artifacts.routes import ARTIFACT_RETENTION_KEY
from cyclone.server.auth import TokenAuthority
from cyclone.server.builtins import ensure_builtins
from cyclone.server.errors import install_error_handlers
from cyclone.server.limits import RequestLimits, RequestLimitsMiddleware
from cyclone.server.provisioning import run_provisioning
from cyclone.server.state import ClusterLookup, ServerState
from cyclone.server.tenant_records import ensure_tenant

log = logging.getLogger(__name__)
API_PREFIX = "/apis/v1alpha1"


async def bootstrap(state: ServerState) -> None:
    """What must exist before the first request: the `system` tenant and the built-ins."""
    await ensure_tenant(state.cluster, keys.DEFAULT_TENANT,
                        state.settings.tenant_defaults.apply(TenantSpec(), set(), set()))
    await ensure_builtins(state.cluster, dict(DEFAULT_RESOLVER_IMAGES))
    await ensure_control_cluster(state.cluster)


async def ensure_control_cluster(cluster: Cluster) -> None:
    """The ExecutionCluster of the control cluster itself (no credential: the engine's own
    connection), so it is listed beside the worker clusters."""
    with contextlib.suppress(errors.AlreadyExists):
        await cluster.create({
            "apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
            "metadata": {"name": keys.CONTROL_CLUSTER_NAME,
                         "labels": {keys.LABEL_POD_CREATED_BY: keys.CREATED_BY_CYCLONE}},
            "spec": {"credential": {}},
        })


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    router.include_router(tenants.router)
    router.include_router(integrations.router)
    router.include_router(clusters.router)
    router.include_router(pvcwatcher.router)
    router.include_router(crosstenant.router)
    router.include_router(scmrepos.router)
    router.include_router(storage.router)
    router.include_router(settings.router)
    router.include_router(cleancache.router)
    router.include_router(catalog.catalog_router())
    router.include_router(templates.templates_router())
    router.include_router(runs.router)
    router.include_router(run_events.router)
    router.include_router(run_stream.router)
    router.include_router(stats.router)
    router.include_router(delegation.router)
    router.include_router(webhooks.router)
    return router


def create_app(
    *,
    cluster: Cluster,
    data_dir: Path,
    admin_token: str,
    clusters: ClusterLookup | None = None,
    extra_routers: Sequence[APIRouter] = (),
    server_url: str = "http://127.0.0.1:7099",
    engine_key_namespace: str = keys.ENGINE_NAMESPACE,
    artifact_retention: timedelta | None = None,
    webhook_replay_window: timedelta | None = None,
    limits: RequestLimits | None = None,
    provisioning: bool = True,
    server_settings: ServerSettings | None = None,
) -> FastAPI:
    """The REST API on `/apis/v1alpha1`, with `/healthcheck` and `/openapi.json` (the docs
    pages and the web UI are mounted by `cyclone.ui.app.mount_ui`).

    `extra_routers` are mounted under `/apis/v1alpha1` too; they reach the shared state
    through `cyclone.server.auth.server_state` and authorise with `require_tenant`.
    `server_url` is how pods (the PVC watchdog) reach this server; `engine_key_namespace`
    is the engine's `system_namespace`, where the key of its tokens is kept;
    signed SCM deliveries are remembered for `webhook_replay_window` (None: the default);
    uploaded artifacts are kept for `artifact_retention` (None: until deleted);
    `limits` bound request bodies before any route reads them (`cyclone.server.limits`);
    `provisioning`: the tenant provisioning controller runs with the app (False where the
    caller runs it, e.g. under a leader lease: `cyclone.server.provisioning.run_provisioning`);
    `server_settings`: new tenants' defaults and cluster, and the runs' web link.
    """
    limits = limits or RequestLimits()
    state = ServerState(
        cluster=cluster,
        data_dir=Path(data_dir),
        auth=TokenAuthority(cluster, admin_token),
        clusters=clusters,
        server_url=server_url,
        engine_key_namespace=engine_key_namespace,
        webhook_replay_window=(webhook_replay_window if webhook_replay_window is not None
                               else ServerState.webhook_replay_window),
        extras={ARTIFACT_RETENTION_KEY: artifact_retention},
        limits=limits,
        settings=server_settings or ServerSettings(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bootstrap(state)
        if not provisioning:
            yield
            return
        task = asyncio.create_task(run_provisioning(state), name="tenant-provisioning")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="Cyclone",
        version="v1alpha1",
        description="Kubernetes-native CI/CD workflow engine. Authenticate with "
        "`Authorization: Bearer <token>`; choose the tenant with `X-Tenant` (default system).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    app.state.cyclone = state
    install_error_handlers(app)
    app.add_middleware(RequestLimitsMiddleware, limits=limits)

    @app.get("/healthcheck", tags=["health"])
    async def healthcheck() -> dict:
        return {"status": "ok"}

    @app.get("/version", tags=["health"])
    async def server_version() -> dict:
        """The version of the Cyclone server (as `cyclone version` shows it)."""
        return {"version": __version__}

    router = api_router()
    for extra in extra_routers:
        router.include_router(extra)
    app.include_router(router)
    app.include_router(metrics.router)
    return app


BEARER_SCHEME = "bearerToken"
PUBLIC_PATHS = ("/healthcheck", "/version", "/metrics")


def openapi_document(app: FastAPI) -> dict:
    """The OpenAPI document, declaring the bearer scheme so clients and the docs page's
    "Authorize" send the token; built once."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        document.setdefault("components", {})["securitySchemes"] = {BEARER_SCHEME: {
            "type": "http", "scheme": "bearer",
            "description": "The admin token or a tenant token (`cyt.<tenant>.<id>.<secret>`)."}}
        document["security"] = [{BEARER_SCHEME: []}]
        for path in PUBLIC_PATHS:
            for operation in document.get("paths", {}).get(path, {}).values():
                operation["security"] = []
        app.openapi_schema = document
    return app.openapi_schema


async def serve(app: FastAPI, host: str, port: int, *,
                sock: socket.socket | None = None) -> None:
    """Serve `app` in the current event loop until cancelled (on `sock` when given: a socket
    already bound to host:port).

    Uvicorn's loggers are left to the process's logging setup (`log_config=None`): its
    access log is emitted at INFO on ``uvicorn.access`` and shown only where that logger is
    enabled.
    """
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    try:
        await server.serve(sockets=[sock] if sock is not None else None)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.shield(server.shutdown())
        raise
