"""`/projects/{project}/cleancachetasks`: empty a project's acceleration caches.

A task is the GC-style pod `cachegc--{project}` (`engine/core/acceleration.py`) in the
workload namespace where the tenant's new runs go (the control cluster, or the worker
cluster the tenant opened, reached with its integration's credential), on the PVC they
use; its phase is the task's. It runs the engine's GC image (`ServerSettings.gc_image`).
One task per project at a time: asking again while one runs answers that one; asking
again once it has ended replaces it, so at most one finished pod per project is kept, the
one `GET` reports on.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from cyclone.api import keys
from cyclone.engine.core import provisioning as plan
from cyclone.engine.core.acceleration import (
    build_clean_cache_pod,
    clean_cache_pod_name,
    project_cache_path,
)
from cyclone.engine.core.phases import TERMINAL_PHASES
from cyclone.engine.placement import execution_context
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import server_state
from cyclone.server.dialing import dialled
from cyclone.server.integration_records import list_integration_secrets, spec_of_secret
from cyclone.server.scopes import Scope, project_scope
from cyclone.server.state import ServerState

router = APIRouter(tags=["projects"])

CLEAN_POD_RESOURCES = {"requests": {"cpu": "50m", "memory": "32Mi"},
                       "limits": {"cpu": "200m", "memory": "128Mi"}}
"""So that the workload namespace's ResourceQuota, which demands them, admits the pod: the
engine's default ``gc_resources``, where the server is not told the engine's own
(`ServerSettings.gc_resources`)."""


class CleanCacheTask(BaseModel):
    name: str
    project: str
    folder: str
    """The folder of the tenant PVC the task empties."""
    phase: str
    message: str | None = None


async def _worker_source(state: ServerState, tenant: str, cluster: str) -> dict:
    """The `spec.cluster` of the tenant's opened Cluster integration named `cluster`."""
    for secret in await list_integration_secrets(state.cluster, tenant, "Cluster"):
        source = spec_of_secret(secret).get("cluster") or {}
        name = plan.execution_cluster_name(secret["metadata"]["name"], source)
        if name == cluster and source.get("isWorkerCluster"):
            return source
    raise errors.Conflict(f"tenant {tenant!r} has no opened cluster {cluster!r}")


@contextlib.asynccontextmanager
async def _target(scope: Scope, state: ServerState
                  ) -> AsyncIterator[tuple[Cluster, str, str]]:
    """Where the tenant's new runs go: (cluster, workload namespace, PVC)."""
    context = await execution_context(state.cluster, scope.tenant)
    namespace, pvc = context.get("namespace") or scope.namespace, context.get("pvc")
    if not pvc:
        raise errors.Conflict(f"tenant {scope.tenant!r} has no PVC: it keeps no caches")
    if context.get("cluster") in (None, keys.CONTROL_CLUSTER_NAME):
        yield state.cluster, namespace, pvc
        return
    source = await _worker_source(state, scope.tenant, context["cluster"])
    async with dialled(state.cluster, state.clusters, source) as cluster:
        yield cluster, namespace, pvc


def _task(project: str, pod: dict) -> CleanCacheTask:
    status = pod.get("status") or {}
    return CleanCacheTask(name=pod["metadata"]["name"], project=project,
                          folder=project_cache_path(project),
                          phase=status.get("phase") or "Pending",
                          message=status.get("message") or None)


async def _pod(cluster: Cluster, name: str, namespace: str) -> dict | None:
    try:
        return await cluster.get(kinds.POD, name, namespace)
    except errors.NotFound:
        return None


@router.post("/projects/{project}/cleancachetasks", status_code=202,
             response_model=CleanCacheTask, summary="Empty a project's acceleration caches")
async def create_clean_cache_task(
    response: Response,
    scope: Scope = Depends(project_scope),
    state: ServerState = Depends(server_state),
) -> CleanCacheTask:
    """Start the pod that empties `caches/{project}` on the tenant PVC; follow it with
    `GET …/cleancachetasks/{name}`. A task of the project that still runs is answered."""
    project = scope.project or ""
    name = clean_cache_pod_name(project)
    async with _target(scope, state) as (cluster, namespace, pvc):
        existing = await _pod(cluster, name, namespace)
        if existing is not None:
            if (existing.get("status") or {}).get("phase") not in TERMINAL_PHASES:
                return _task(project, existing)
            with contextlib.suppress(errors.NotFound):
                await cluster.delete(kinds.POD, name, namespace, grace_period_seconds=0)
        pod = build_clean_cache_pod(
            project, scope.tenant, namespace, pvc, image=state.settings.gc_image,
            resources=state.settings.gc_resources or CLEAN_POD_RESOURCES)
        try:
            created = await cluster.create(pod, namespace=namespace)
        except errors.AlreadyExists:
            raise errors.Conflict(f"the previous cache cleaning of project {project!r} is "
                                  f"still being removed; ask again in a moment") from None
    response.headers["Location"] = (
        f"/apis/v1alpha1/projects/{project}/cleancachetasks/{name}")
    return _task(project, created)


@router.get("/projects/{project}/cleancachetasks/{task}", response_model=CleanCacheTask,
            summary="Get a cache cleaning task")
async def get_clean_cache_task(
    task: str,
    scope: Scope = Depends(project_scope),
    state: ServerState = Depends(server_state),
) -> CleanCacheTask:
    """The task's phase: Pending, Running, Succeeded or Failed."""
    project = scope.project or ""
    found = None
    if task == clean_cache_pod_name(project):
        async with _target(scope, state) as (cluster, namespace, _):
            found = await _pod(cluster, task, namespace)
    if found is None or (found["metadata"].get("labels") or {}).get(
            keys.LABEL_PROJECT) != project:
        raise errors.NotFound(f"cache cleaning task {task!r} not found")
    return _task(project, found)
