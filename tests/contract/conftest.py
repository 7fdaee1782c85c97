from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import CLUSTER_FACTORIES, cluster_params, eventually

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with CLUSTER_FACTORIES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
async def namespace(cluster: Cluster) -> AsyncIterator[str]:
    """A fresh namespace (with its default ServiceAccount, so pods are admitted)."""
    name = f"ct-{secrets.token_hex(4)}"
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await eventually(lambda: cluster.get(kinds.SERVICE_ACCOUNT, "default", name))
    yield name
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NAMESPACE, name)
