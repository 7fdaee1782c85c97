from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cyclone.api import keys
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.protocol import Cluster
from cyclone.server import create_app
from cyclone.server.webhooks import router as webhook_router

from .support import ADMIN_TOKEN, API


@pytest.fixture(params=["embedded", pytest.param("kube", marks=pytest.mark.k8s)])
async def cluster(request, tmp_path: Path) -> AsyncIterator[Cluster]:
    """The embedded store, or a clean default-tenant namespace on a real kube-apiserver."""
    if request.param == "kube":
        from support.kube_engine import engine_test_cluster

        async with engine_test_cluster(keys.tenant_namespace(keys.DEFAULT_TENANT),
                                       keys.tenant_pvc_name(keys.DEFAULT_TENANT)) as remote:
            yield remote
        return
    embedded = EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.01)
    await embedded.start()
    try:
        yield embedded
    finally:
        await embedded.close()


@pytest.fixture
async def app(cluster: EmbeddedCluster, tmp_path: Path):
    application = create_app(cluster=cluster, data_dir=tmp_path / "data",
                             admin_token=ADMIN_TOKEN, extra_routers=[webhook_router],
                             server_url="http://cyclone.test:7099")
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def admin(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cyclone.test" + API,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield client


@pytest.fixture
async def anonymous(app) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a token, as an SCM provider posts."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cyclone.test" + API,
    ) as client:
        yield client
