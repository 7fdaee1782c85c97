"""Tenants: a metadata namespace `cyclone-{tenant}` annotated with the tenant's info."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from cyclone.api import keys
from cyclone.api.tenant import PodFeature
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import (
    Principal,
    current_principal,
    require_admin,
    server_state,
    tenant_allowed,
)
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.objects import DNS_LABEL, check_annotations
from cyclone.server.state import ServerState

log = logging.getLogger(__name__)
ANNOTATION_STORAGE_USAGE = "tenant.cyclone.dev/storage-usage"
_HIDDEN_ANNOTATIONS = (keys.ANNOTATION_TENANT_INFO, ANNOTATION_STORAGE_USAGE)


class PersistentVolumeClaimSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    storageClass: str = Field(default="", max_length=253)
    size: str = Field(default="10Gi", pattern=r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[mkMGTPE]|)$")


class TenantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    persistentVolumeClaim: PersistentVolumeClaimSpec = Field(
        default_factory=PersistentVolumeClaimSpec
    )
    resourceQuota: dict[str, str] = Field(default_factory=dict)
    allowedPodFeatures: list[PodFeature] = Field(
        default_factory=list,
        description="Pod features that escape a pod (hostPath, privileged, hostNetwork, "
                    "hostPID, hostIPC, capabilities, hostPort) this tenant's stages may use. "
                    "Only an admin sets it; none by default.")
    allowLocalAddresses: bool = Field(
        default=False,
        description="SCM servers and notification URLs of this tenant may be loopback or "
                    "link-local addresses. Only an admin sets it; refused by default.")


class TenantMeta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=50, pattern=DNS_LABEL)
    annotations: dict[str, str] = Field(default_factory=dict)


class Tenant(BaseModel):
    metadata: TenantMeta
    spec: TenantSpec = Field(default_factory=TenantSpec)


def _check_quota(quota: dict[str, str]) -> None:
    from cyclone.server.quantities import parse_quantity

    for name, value in quota.items():
        try:
            parse_quantity(value)
        except ValueError as exc:
            raise errors.Invalid(f"spec.resourceQuota[{name}]: {exc}") from exc


def tenant_namespace_object(tenant: Tenant) -> dict:
    annotations = {k: v for k, v in tenant.metadata.annotations.items()
                   if k not in _HIDDEN_ANNOTATIONS}
    annotations[keys.ANNOTATION_TENANT_INFO] = tenant.spec.model_dump_json()
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": keys.tenant_namespace(tenant.metadata.name),
            "labels": {keys.LABEL_TENANT: tenant.metadata.name},
            "annotations": annotations,
        },
    }


def tenant_from_namespace(ns: dict) -> dict[str, Any] | None:
    """The API shape of a tenant, or None for a namespace that is not a tenant's."""
    meta = ns.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    name = meta.get("name") or ""
    if keys.ANNOTATION_TENANT_INFO not in annotations or \
            not name.startswith(keys.TENANT_NAMESPACE_PREFIX):
        return None
    try:
        spec = TenantSpec.model_validate(json.loads(annotations[keys.ANNOTATION_TENANT_INFO]))
    except ValueError:
        spec = TenantSpec()
    return {
        "metadata": {
            "name": name[len(keys.TENANT_NAMESPACE_PREFIX):],
            "annotations": {k: v for k, v in annotations.items() if k not in _HIDDEN_ANNOTATIONS},
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": spec.model_dump(),
    }


async def read_tenant(cluster: Cluster, tenant: str) -> dict:
    try:
        ns = await cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    except errors.NotFound:
        ns = None
    found = tenant_from_namespace(ns) if ns else None
    if found is None:
        raise errors.NotFound(f"tenant {tenant!r} not found")
    if (ns or {}).get("metadata", {}).get("deletionTimestamp"):
        raise errors.NotFound(f"tenant {tenant!r} is being deleted")
    return found


async def tenant_spec(cluster: Cluster, tenant: str) -> TenantSpec:
    return TenantSpec.model_validate((await read_tenant(cluster, tenant))["spec"])


async def ensure_tenant(cluster: Cluster, tenant: Tenant) -> None:
    """Create a tenant's metadata namespace when missing (used at startup for `system`)."""
    try:
        ns = await cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant.metadata.name))
    except errors.NotFound:
        try:
            await cluster.create(tenant_namespace_object(tenant))
        except errors.AlreadyExists:
            pass
        return
    if keys.ANNOTATION_TENANT_INFO not in (ns["metadata"].get("annotations") or {}):
        await cluster.patch(
            kinds.NAMESPACE, ns["metadata"]["name"],
            {"metadata": {"labels": {keys.LABEL_TENANT: tenant.metadata.name}, "annotations": {
                keys.ANNOTATION_TENANT_INFO: tenant.spec.model_dump_json()}}},
        )


router = APIRouter(tags=["tenants"])


@router.get("/tenants")
async def list_tenants(
    query: ListQuery = Depends(list_query),
    state: ServerState = Depends(server_state),
    _: Principal = Depends(require_admin),
) -> dict:
    listed = await state.cluster.list(kinds.NAMESPACE)
    tenants = [t for ns in listed.items if not (ns["metadata"].get("deletionTimestamp"))
               for t in [tenant_from_namespace(ns)] if t]
    return paginate(tenants, query)


@router.post("/tenants", status_code=201)
async def create_tenant(
    tenant: Tenant,
    state: ServerState = Depends(server_state),
    _: Principal = Depends(require_admin),
) -> dict:
    _check_quota(tenant.spec.resourceQuota)
    check_annotations(tenant.metadata.annotations)
    try:
        ns = await state.cluster.create(tenant_namespace_object(tenant))
    except errors.AlreadyExists as exc:
        if await _being_deleted(state.cluster, tenant.metadata.name):
            raise errors.Conflict(f"tenant {tenant.metadata.name!r} is being deleted, "
                                  f"retry shortly") from exc
        raise errors.AlreadyExists(f"tenant {tenant.metadata.name!r} already exists") from exc
    return tenant_from_namespace(ns) or {}


async def _being_deleted(cluster: Cluster, tenant: str) -> bool:
    try:
        ns = await cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    except errors.NotFound:
        return False
    return bool(ns["metadata"].get("deletionTimestamp"))


@router.get("/tenants/{tenant}")
async def get_tenant(
    tenant: str,
    state: ServerState = Depends(server_state),
    principal: Principal = Depends(current_principal),
) -> dict:
    if not tenant_allowed(principal, tenant):
        raise errors.NotFound(f"tenant {tenant!r} not found")
    return await read_tenant(state.cluster, tenant)


@router.put("/tenants/{tenant}")
async def update_tenant(
    tenant: str,
    body: Tenant,
    state: ServerState = Depends(server_state),
    _: Principal = Depends(require_admin),
) -> dict:
    if body.metadata.name != tenant:
        raise errors.BadRequest(f"metadata.name {body.metadata.name!r} is not {tenant!r}")
    _check_quota(body.spec.resourceQuota)
    check_annotations(body.metadata.annotations)
    await read_tenant(state.cluster, tenant)
    from cyclone.server.clusters import apply_tenant_quota

    wanted = tenant_namespace_object(body)["metadata"]
    ns = await state.cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    annotations = {k: v for k, v in (ns["metadata"].get("annotations") or {}).items()
                   if k in (ANNOTATION_STORAGE_USAGE,)}
    ns["metadata"]["annotations"] = {**wanted["annotations"], **annotations}
    updated = await state.cluster.replace(ns)
    await apply_tenant_quota(state, tenant, body.spec)
    return tenant_from_namespace(updated) or {}


@router.delete("/tenants/{tenant}", status_code=204)
async def delete_tenant(
    tenant: str,
    state: ServerState = Depends(server_state),
    _: Principal = Depends(require_admin),
) -> Response:
    """Delete a tenant and everything of it: workload namespaces in every cluster too,
    and its stored logs and artifacts. Its name can be used again once the namespace is
    gone; until then creating it answers 409 (being deleted) and reading it 404."""
    if tenant == keys.DEFAULT_TENANT:
        raise errors.Forbidden(f"the {keys.DEFAULT_TENANT} tenant cannot be deleted")
    await read_tenant(state.cluster, tenant)
    from cyclone.server.clusters import close_all_clusters

    await close_all_clusters(state, tenant)
    try:
        await state.cluster.delete(
            kinds.NAMESPACE, keys.tenant_namespace(tenant), propagation_policy="Background"
        )
    except errors.NotFound:
        pass
    from cyclone.server.logs.rundata import remove_tenant_dirs
    from cyclone.server.logs.services import run_data_roots

    await asyncio.to_thread(remove_tenant_dirs, run_data_roots(state), tenant)
    return Response(status_code=204)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=256)


@router.get("/tenants/{tenant}/tokens")
async def list_tokens(
    tenant: str,
    state: ServerState = Depends(server_state),
    principal: Principal = Depends(current_principal),
) -> dict:
    if not tenant_allowed(principal, tenant):
        raise errors.NotFound(f"tenant {tenant!r} not found")
    await read_tenant(state.cluster, tenant)
    items = await state.auth.list_tokens(tenant)
    return {"metadata": {"total": len(items), "itemsLength": len(items)}, "items": items}


@router.post("/tenants/{tenant}/tokens", status_code=201)
async def issue_token(
    tenant: str,
    body: TokenRequest | None = None,
    state: ServerState = Depends(server_state),
    _: Principal = Depends(require_admin),
) -> dict:
    """Issue a tenant token; the token itself is shown only in this answer."""
    await read_tenant(state.cluster, tenant)
    issued = await state.auth.issue(tenant, (body or TokenRequest()).description)
    return {"id": issued.id, "tenant": tenant, "token": issued.token,
            "description": issued.description, "createdAt": issued.created_at}


@router.delete("/tenants/{tenant}/tokens/{token_id}", status_code=204)
async def revoke_token(
    tenant: str,
    token_id: str,
    state: ServerState = Depends(server_state),
    principal: Principal = Depends(current_principal),
) -> Response:
    if not tenant_allowed(principal, tenant):
        raise errors.NotFound(f"tenant {tenant!r} not found")
    await read_tenant(state.cluster, tenant)
    await state.auth.revoke(tenant, token_id)
    return Response(status_code=204)
