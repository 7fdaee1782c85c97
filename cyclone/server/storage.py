"""`/storage/usages`: what the PVC watchdog reports, kept on the tenant's namespace."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from cyclone.api import keys
from cyclone.engine.core.gcpod import ANNOTATION_COLLECT_NOW, cleanup_candidates
from cyclone.kube import errors, kinds
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import ANNOTATION_STORAGE_USAGE, read_tenant

router = APIRouter(tags=["storage"])


class StorageUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total: int = Field(ge=0, le=2**63 - 1)
    used: int = Field(ge=0, le=2**63 - 1)
    items: dict[str, int] = Field(default_factory=dict)


@router.post("/storage/usages")
async def report_usage(
    usage: StorageUsage,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    """Record the tenant PVC's usage (called by the PVC watchdog)."""
    await read_tenant(state.cluster, tenant)
    record = {**usage.model_dump(),
              "reportedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    await state.cluster.patch(
        kinds.NAMESPACE, keys.tenant_namespace(tenant),
        {"metadata": {"annotations": {ANNOTATION_STORAGE_USAGE: json.dumps(record)}}},
    )
    return record


@router.get("/storage/usages")
async def read_usage(
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    """The tenant PVC's last reported usage `{total, used, items{folder: size}}`."""
    await read_tenant(state.cluster, tenant)
    ns = await state.cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    raw = (ns["metadata"].get("annotations") or {}).get(ANNOTATION_STORAGE_USAGE)
    if not raw:
        raise errors.NotFound(f"no storage usage reported yet for tenant {tenant!r}")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.NotFound("the stored storage usage is unreadable") from exc


@router.post("/storage/cleanup", status_code=202,
             summary="Collect the finished runs' data from the tenant PVC now")
async def start_cleanup(
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    """Start the GC of every finished run of the tenant whose folder
    `workflowruns/{run}` is still on its PVC, without waiting for the GC delay: each is
    marked for the engine's GC pod, which removes the folder and then sets
    `status.cleaned`. Answers the runs it started collecting."""
    await read_tenant(state.cluster, tenant)
    namespace = keys.tenant_namespace(tenant)
    runs = (await state.cluster.list(kinds.WORKFLOW_RUN, namespace)).items
    started = []
    for name in cleanup_candidates(runs):
        try:
            await state.cluster.patch(kinds.WORKFLOW_RUN, name, {"metadata": {
                "annotations": {ANNOTATION_COLLECT_NOW: "true"}}}, namespace)
        except errors.NotFound:
            continue
        started.append(name)
    return {"tenant": tenant, "workflowruns": started}
