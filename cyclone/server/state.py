"""What every route of the server reaches through `request.app.state.cyclone`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.deliveries import DEFAULT_REPLAY_WINDOW_SECONDS
from cyclone.engine.core.serversettings import ServerSettings
from cyclone.kube.protocol import Cluster
from cyclone.server.limits import RequestLimits

ClusterLookup = Callable[[dict], Awaitable[Cluster]]
"""Given a Cluster integration's `spec.cluster` dict, the Cluster it designates."""


@dataclass
class ServerState:
    cluster: Cluster
    data_dir: Path
    auth: Any
    clusters: ClusterLookup | None = None
    server_url: str = "http://127.0.0.1:7099"
    engine_key_namespace: str = keys.ENGINE_NAMESPACE
    """Where the engine keeps the key its tokens are signed with (the engine's
    `system_namespace`)."""
    webhook_replay_window: timedelta = timedelta(seconds=DEFAULT_REPLAY_WINDOW_SECONDS)
    """How long a signed SCM delivery is remembered, so that a replay starts nothing."""
    extras: dict = field(default_factory=dict)
    limits: RequestLimits = field(default_factory=RequestLimits)
    """Body size and JSON depth limits of requests (`cyclone.server.limits`)."""
    settings: ServerSettings = field(default_factory=ServerSettings)
    """Server-wide settings: new tenants' defaults and cluster, the runs' web link."""
