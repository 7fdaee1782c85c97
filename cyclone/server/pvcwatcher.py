"""Starting and stopping the PVC watchdog of a tenant's opened Cluster integration.

The choice is recorded on the integration (`watchdog.ANNOTATION_WATCHER`), where the
provisioning controller reads it on every reconcile: a stopped watchdog stays stopped
until it is started again, and closing and opening the cluster keeps the choice.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query

from cyclone.engine.core import provisioning as plan
from cyclone.kube import errors, kinds
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.clusters import reconciled
from cyclone.server.integration_records import read_integration_secret, spec_of_secret
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import read_tenant
from cyclone.server.watchdog import ANNOTATION_WATCHER, WATCHER_STOPPED, watcher_wanted

router = APIRouter(tags=["integrations"])
Action = Literal["start", "stop"]


def watcher_answer(tenant: str, secret: dict) -> dict:
    source = spec_of_secret(secret).get("cluster") or {}
    return {"metadata": {"name": secret["metadata"]["name"]},
            "workloadNamespace": plan.workload_namespace(tenant, source),
            "executionCluster": plan.execution_cluster_name(secret["metadata"]["name"], source),
            "pvcWatcher": "started" if watcher_wanted(secret) else "stopped"}


@router.put("/integrations/{integration}/pvcwatcher",
            summary="Start or stop the PVC watchdog of an opened Cluster integration")
async def pvc_watcher_route(
    integration: str,
    action: Action = Query(description="`start` or `stop` the watchdog"),
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    """`stop` removes the watchdog pod that reports the tenant PVC's usage to
    `/storage/usages` from the integration's workload namespace, and keeps it away; its
    token is revoked. `start` brings it back with a new token. The integration must be an
    opened Cluster integration (409 otherwise)."""
    await read_tenant(state.cluster, tenant)
    secret = await read_integration_secret(state.cluster, tenant, integration)
    spec = spec_of_secret(secret)
    if spec.get("type") != "Cluster":
        raise errors.BadRequest(f"integration {integration!r} is not of type Cluster")
    if not (spec.get("cluster") or {}).get("isWorkerCluster"):
        raise errors.Conflict(f"integration {integration!r} is not an opened cluster; "
                              f"open it first (PUT /integrations/{integration}/opencluster)")
    value = WATCHER_STOPPED if action == "stop" else None
    updated = await state.cluster.patch(
        kinds.SECRET, integration, {"metadata": {"annotations": {ANNOTATION_WATCHER: value}}},
        secret["metadata"]["namespace"])
    await reconciled(state, tenant)
    return watcher_answer(tenant, updated)
