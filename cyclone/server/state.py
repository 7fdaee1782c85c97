"""What every route of the server reaches through `request.app.state.cyclone`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cyclone.kube.protocol import Cluster

ClusterLookup = Callable[[dict], Awaitable[Cluster]]
"""Given a Cluster integration's `spec.cluster` dict, the Cluster it designates."""


class EngineHooks(Protocol):
    """What the server asks of the engine beyond writing objects."""

    async def report_delegation_result(
        self, cluster: Cluster, namespace: str, run: str, stage: str, token: str, result: dict
    ) -> None: ...


@dataclass
class ServerState:
    cluster: Cluster
    data_dir: Path
    auth: Any
    clusters: ClusterLookup | None = None
    engine_hooks: Any = None
    server_url: str = "http://127.0.0.1:7099"
    extras: dict = field(default_factory=dict)
