from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clusters import embedded_cluster, eventually
from support.control_plane import control_plane, kube_cluster

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.protocol import Cluster

__all__ = ["cluster", "control_plane", "namespace"]

FACTORIES = {"embedded": embedded_cluster, "kube": kube_cluster}


@pytest.fixture(params=["embedded", pytest.param("kube", marks=pytest.mark.k8s)])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with FACTORIES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
async def namespace(cluster: Cluster) -> AsyncIterator[str]:
    name = f"le-{secrets.token_hex(4)}"
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await eventually(lambda: cluster.get(kinds.NAMESPACE, name))
    yield name
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NAMESPACE, name)
