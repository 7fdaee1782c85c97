"""What a server process runs beside its routes: log collection and artifact retention."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from cyclone.api import keys
from cyclone.kube.execution_clusters import Connect, ExecutionClusterRegistry, connect_remote
from cyclone.server.artifacts.routes import artifact_store_for, build_artifacts_router
from cyclone.server.logs.collectors import LogCollectors
from cyclone.server.logs.routes import build_logs_router, log_store_for
from cyclone.server.state import ServerState


def log_and_artifact_routers() -> list[APIRouter]:
    """The routers to pass as `create_app(extra_routers=…)` (mounted under the API prefix)."""
    return [build_logs_router(prefix=""), build_artifacts_router(prefix="")]


async def run_log_and_artifact_services(
    state: ServerState,
    *,
    collectors: LogCollectors | None = None,
    sweep_interval: float = 3600.0,
    connect: Connect | None = connect_remote,
) -> None:
    """Collect stage logs of the control cluster and of every cluster an ExecutionCluster
    describes (`connect=None`: only those added to `collectors`), and sweep expired
    artifacts, until cancelled."""
    collectors = collectors or LogCollectors(log_store_for(state), control=state.cluster)
    collectors.add_cluster(keys.CONTROL_CLUSTER_NAME, state.cluster)
    async with asyncio.TaskGroup() as group:
        group.create_task(collectors.run(), name="log-collectors")
        if connect is not None:
            registry = ExecutionClusterRegistry(
                state.cluster, on_added=collectors.add_cluster,
                on_removed=collectors.remove_cluster, connect=connect,
            )
            group.create_task(registry.run(), name="log-execution-clusters")
        group.create_task(artifact_store_for(state).run_retention_sweeps(sweep_interval),
                          name="artifact-retention")


__all__ = ["log_and_artifact_routers", "run_log_and_artifact_services"]
