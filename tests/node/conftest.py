from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import FakeRuntime, HostRuntime, NodeAgent
from node.helpers import running_agent


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.02) as embedded:
        yield embedded


@pytest.fixture
async def host_agent(cluster: EmbeddedCluster, tmp_path: Path) -> AsyncIterator[NodeAgent]:
    async with running_agent(cluster, tmp_path / "node", HostRuntime()) as agent:
        yield agent


@pytest.fixture
async def fake_agent(cluster: EmbeddedCluster, tmp_path: Path) -> AsyncIterator[NodeAgent]:
    runtime = FakeRuntime(exit_code=0, duration_seconds=0.05)
    async with running_agent(cluster, tmp_path / "node", runtime, schedule_unbound=True) as agent:
        yield agent


