from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app

from .helpers import ADMIN_TOKEN, create_tenant, make_client, tenant_token


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EmbeddedCluster]:
    embedded = EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.01)
    await embedded.start()
    try:
        yield embedded
    finally:
        await embedded.close()


@pytest.fixture
def lookups() -> list[dict]:
    """The cluster sources the server asked the (fake) remote-cluster lookup for."""
    return []


@pytest.fixture
async def app(cluster: EmbeddedCluster, tmp_path: Path, lookups: list[dict]):
    async def lookup(source: dict) -> EmbeddedCluster:
        lookups.append(source)
        return cluster

    application = create_app(cluster=cluster, data_dir=tmp_path / "data",
                             admin_token=ADMIN_TOKEN, clusters=lookup,
                             server_url="http://cyclone.test:7099")
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def admin(app) -> AsyncIterator:
    async with make_client(app, ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
async def devops(app, admin) -> AsyncIterator:
    """A client holding a token of the tenant `devops`."""
    await create_tenant(admin, "devops")
    async with make_client(app, await tenant_token(admin, "devops")) as client:
        yield client
