"""What a server process runs beside its routes: log collection, artifact retention, and
the sweep that removes the stored data of runs and tenants that are gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter

from cyclone.api import keys
from cyclone.kube.execution_clusters import Connect, ExecutionClusterRegistry, connect_remote
from cyclone.server.artifacts.routes import artifact_store_for, build_artifacts_router
from cyclone.server.logs.collectors import LogCollectors
from cyclone.server.logs.routes import build_logs_router, log_store_for
from cyclone.server.logs.rundata import DEFAULT_SWEEP_SECONDS, RunDataSweeper
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
    run_data_sweep_interval: float = DEFAULT_SWEEP_SECONDS,
) -> None:
    """Collect stage logs of the control cluster and of every cluster an ExecutionCluster
    describes (`connect=None`: only those added to `collectors`), sweep expired
    artifacts, and remove the stored data of deleted runs and tenants, until cancelled."""
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
        sweeper = RunDataSweeper(state.cluster, run_data_roots(state),
                                 interval=run_data_sweep_interval)
        group.create_task(sweeper.run(), name="run-data-sweep")


def run_data_roots(state: ServerState) -> list[Path]:
    """The roots of the stores that keep data per run."""
    return [log_store_for(state).root, artifact_store_for(state).root]


__all__ = ["log_and_artifact_routers", "run_data_roots", "run_log_and_artifact_services"]
