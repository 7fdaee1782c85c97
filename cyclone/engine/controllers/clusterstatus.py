"""ExecutionCluster status: whether the engine reaches each cluster, for `kubectl get ec`.

`status.phase` is `Connected` (its pod cache is in sync), `Connecting` (not yet),
`Unavailable` (it has not answered for `cluster_unreachable_seconds`; runs aimed at it
fail) or `Invalid` (its credential cannot be used), with a message saying why. The engine
writes it only when it changes, so a steady cluster costs no writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from cyclone.api import keys
from cyclone.engine.config import EngineConfig
from cyclone.engine.controllers.caches import ControlCaches
from cyclone.engine.core.timefmt import rfc3339
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, NotFound
from cyclone.kube.execution_clusters import ExecutionClusterRegistry
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

CONNECTED = "Connected"
CONNECTING = "Connecting"
UNAVAILABLE = "Unavailable"
INVALID = "Invalid"


def cluster_phase(
    name: str, registry: ExecutionClusterRegistry, caches: ControlCaches, config: EngineConfig
) -> tuple[str, str]:
    """(phase, message) of one ExecutionCluster as the engine sees it now."""
    if name in registry.problems:
        return INVALID, registry.problems[name]
    execution = caches.execution_cluster(name)
    if execution is None:
        return CONNECTING, "the engine is connecting to the cluster"
    failing_for, error = execution.unreachable()
    if failing_for >= config.cluster_unreachable_seconds:
        return UNAVAILABLE, f"no answer for {failing_for:.0f}s: {error}"
    if not getattr(execution.pods, "synced", True):
        return CONNECTING, error or "listing the cluster's pods"
    if name == keys.CONTROL_CLUSTER_NAME:
        return CONNECTED, "the engine's own cluster"
    return CONNECTED, ""


async def report_cluster_statuses(
    control: Cluster,
    registry: ExecutionClusterRegistry,
    caches: ControlCaches,
    config: EngineConfig,
    clock: Callable[[], datetime],
) -> None:
    """Keep every ExecutionCluster's status current, until cancelled."""
    await registry.wait_settled()
    while True:
        for obj in list(registry.informer.list()):
            name = obj["metadata"]["name"]
            phase, message = cluster_phase(name, registry, caches, config)
            status = obj.get("status") or {}
            if (status.get("phase"), status.get("message") or "") == (phase, message):
                continue
            try:
                await control.patch(
                    kinds.EXECUTION_CLUSTER, name,
                    {"status": {"phase": phase, "message": message,
                                "lastTransitionTime": rfc3339(clock())}},
                    subresource="status",
                )
            except NotFound:
                pass
            except ApiError as exc:
                log.warning("cannot write the status of execution cluster %s: %s", name, exc)
        await asyncio.sleep(config.cluster_status_seconds)
