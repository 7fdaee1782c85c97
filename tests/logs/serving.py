"""An app with only the log and artifact routers, and a uvicorn server in the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from cyclone.kube import errors
from cyclone.server.artifacts import build_artifacts_router
from cyclone.server.artifacts.routes import UPLOAD_KEY
from cyclone.server.auth import Principal
from cyclone.server.errors import install_error_handlers
from cyclone.server.logs import build_logs_router
from cyclone.server.state import ServerState

ADMIN = "admin-token"
DEVOPS = "devops-token"
OTHER = "other-token"


class StubAuthority:
    async def authenticate(self, token: str) -> Principal:
        if token == ADMIN:
            return Principal(admin=True)
        if token == DEVOPS:
            return Principal(admin=False, tenant="devops", token_id="t1")
        if token == OTHER:
            return Principal(admin=False, tenant="other", token_id="t2")
        raise errors.Unauthorized("invalid token")


def build_app(data_dir: Path, extras: dict | None = None, cluster: object = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.cyclone = ServerState(cluster=cluster, data_dir=data_dir,  # type: ignore[arg-type]
                                    auth=StubAuthority(),
                                    extras={UPLOAD_KEY: b"upload-key", **(extras or {})})
    app.include_router(build_logs_router())
    app.include_router(build_artifacts_router())
    return app


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)
