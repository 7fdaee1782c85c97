"""Tenants: a metadata namespace `cyclone-{tenant}` annotated with the tenant's info."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from cyclone.api import keys
from cyclone.api.integration import Integration
from cyclone.api.tenant import Tenant
from cyclone.engine.core.serversettings import control_cluster_integration
from cyclone.kube import errors, kinds
from cyclone.kube.creation import create_named
from cyclone.server.auth import (
    Principal,
    current_principal,
    require_admin,
    server_state,
    tenant_allowed,
)
from cyclone.server.body_rules import check_rules
from cyclone.server.clusters import open_cluster, reconciled
from cyclone.server.crud import DryRunQuery
from cyclone.server.integration_records import read_integration_secret
from cyclone.server.integrations import create_integration
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.objects import check_annotations
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import (
    ANNOTATION_STORAGE_USAGE,
    being_deleted,
    check_quota,
    read_tenant,
    tenant_from_namespace,
    tenant_namespace_object,
)

log = logging.getLogger(__name__)


def _annotations(tenant: Tenant) -> dict[str, str]:
    return tenant.metadata.annotations or {}


def _namespace_object(tenant: Tenant) -> dict:
    return tenant_namespace_object(tenant.name, tenant.spec, _annotations(tenant))


def _check_body(tenant: Tenant) -> None:
    check_rules(tenant)
    check_quota(tenant.spec.resource_quota)
    check_annotations(_annotations(tenant))


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
    dry_run: DryRunQuery = False,
) -> dict:
    """Create a tenant; what its body leaves out of the PVC and quota comes from the
    server's defaults, and the control cluster is opened for it when the server opens it
    for new tenants (a refused opening is logged and shown on the integration's status).
    With ``dryRun`` the checks run alike and the answer is the tenant that would be
    created; nothing is stored, provisioned or opened."""
    _check_body(tenant)
    given = tenant.spec.model_fields_set if "spec" in tenant.model_fields_set else set()
    pvc_given = (tenant.spec.persistent_volume_claim.model_fields_set
                 if "persistent_volume_claim" in given else set())
    tenant = tenant.model_copy(update={"spec": state.settings.tenant_defaults.apply(
        tenant.spec, set(given), set(pvc_given))})
    ns = await _create_namespace(state, tenant, dry_run)
    if dry_run:
        return tenant_from_namespace(ns) or {}
    if state.settings.open_control_cluster and tenant.name != keys.DEFAULT_TENANT:
        await _open_control_cluster(state, tenant.name)
    return tenant_from_namespace(ns) or {}


async def _create_namespace(state: ServerState, tenant: Tenant, dry_run: bool) -> dict:
    """The tenant's metadata namespace, created; a namespace that ends between the refused
    create and the look at it is created once more rather than reported as existing."""
    for _ in range(2):
        try:
            return await create_named(state.cluster, _namespace_object(tenant), "tenant",
                                      dry_run=dry_run)
        except errors.AlreadyExists as exc:
            deleting = await being_deleted(state.cluster, tenant.name)
            if deleting is None:
                continue
            if deleting:
                raise errors.Conflict(f"tenant {tenant.name!r} is being deleted, "
                                      f"retry shortly") from exc
            raise errors.AlreadyExists(f"tenant {tenant.name!r} already exists") from exc
    raise errors.Conflict(f"tenant {tenant.name!r} is being deleted, retry shortly")


async def _open_control_cluster(state: ServerState, tenant: str) -> None:
    body = Integration.model_validate(control_cluster_integration(tenant))
    try:
        await create_integration(body, tenant=tenant, state=state)
        secret = await read_integration_secret(state.cluster, tenant, body.metadata.name or "")
        await open_cluster(state, tenant, secret)
    except errors.ApiError as exc:
        log.warning("the control cluster could not be opened for new tenant %s: %s",
                    tenant, exc)


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
    dry_run: DryRunQuery = False,
) -> dict:
    check_rules(body)
    if body.name != tenant:
        raise errors.BadRequest(f"metadata.name {body.name!r} is not {tenant!r}")
    check_quota(body.spec.resource_quota)
    check_annotations(_annotations(body))
    await read_tenant(state.cluster, tenant)

    wanted = _namespace_object(body)["metadata"]
    ns = await state.cluster.get(kinds.NAMESPACE, keys.tenant_namespace(tenant))
    annotations = {k: v for k, v in (ns["metadata"].get("annotations") or {}).items()
                   if k in (ANNOTATION_STORAGE_USAGE,)}
    ns["metadata"]["annotations"] = {**wanted["annotations"], **annotations}
    if dry_run:
        return tenant_from_namespace(ns) or {}
    updated = await state.cluster.replace(ns)
    await reconciled(state, tenant)
    return tenant_from_namespace(updated) or {}


@router.delete("/tenants/{tenant}", status_code=204)
async def delete_tenant(
    tenant: str,
    state: ServerState = Depends(server_state),
    _: Principal = Depends(require_admin),
) -> Response:
    """Delete a tenant and everything of it: workload namespaces in every cluster too
    (the provisioning controller removes them before the tenant's namespace goes),
    and its stored logs and artifacts. Its name can be used again once the namespace is
    gone; until then creating it answers 409 (being deleted) and reading it 404."""
    if tenant == keys.DEFAULT_TENANT:
        raise errors.Forbidden(f"the {keys.DEFAULT_TENANT} tenant cannot be deleted")
    await read_tenant(state.cluster, tenant)
    try:
        await state.cluster.delete(
            kinds.NAMESPACE, keys.tenant_namespace(tenant), propagation_policy="Background"
        )
    except errors.NotFound:
        pass
    await reconciled(state, tenant)
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
