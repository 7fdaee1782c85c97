"""The server app with the pages mounted, served over ASGI in the test's own loop on a cluster
of the engine harness (embedded, or a real kube-apiserver with `backend="kube"`), and a client
of it signed in through the login form.

`backend` and `served` are fixtures: tests/ui/conftest.py makes them available to every UI
test; parametrize `backend` with `engine.harness.BACKENDS` (indirect) to run on both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine.served import Served, served_env

from cyclone.server import create_app
from cyclone.server.logs.services import log_and_artifact_routers, run_log_and_artifact_services
from cyclone.ui.app import mount_ui
from support.ui import page_csrf


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "embedded")


@pytest.fixture
async def served(tmp_path: Path, backend: str) -> AsyncIterator[Served]:
    async with served_env(tmp_path, backend) as running:
        yield running


async def asgi_sign_in(client: httpx.AsyncClient, token: str) -> None:
    """Sign `client` in with `token`; `client.csrf` is then the session's CSRF token."""
    form = (await client.get("/login")).text
    answer = await client.post("/login", data={"token": token, "csrf": page_csrf(form),
                                               "next": "/"})
    assert answer.status_code == 303, answer.text
    client.csrf = page_csrf((await client.get("/")).text)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def served_ui_client(served: Served, data_dir: Path, *, cluster: Any = None,
                           logs: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the server app with the pages mounted on `served`'s cluster (or `cluster`,
    a wrapper of it), signed in as the admin. With `logs`, the app also collects and serves
    run logs, as `cyclone up` does."""
    app = create_app(cluster=cluster or served.env.cluster, data_dir=data_dir,
                     admin_token=served.admin_token, provisioning=False,
                     extra_routers=log_and_artifact_routers() if logs else ())
    mount_ui(app, served.admin_token)
    services = (asyncio.create_task(run_log_and_artifact_services(app.state.cyclone,
                                                                  connect=None))
                if logs else None)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://ui", timeout=30) as client:
            await asgi_sign_in(client, served.admin_token)
            yield client
    finally:
        if services is not None:
            services.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await services
