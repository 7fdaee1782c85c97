"""Integrations: the routes that create, read, update and delete a tenant's integrations.

The records (Secrets) and their redaction are `cyclone.server.integration_records`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from cyclone.api import keys
from cyclone.api.integration import Integration, IntegrationSpec
from cyclone.engine.core.tenancy import RESERVED_SECRET_NAMES
from cyclone.kube import errors, kinds
from cyclone.kube.creation import create_named
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.body_rules import check_rules
from cyclone.server.clusters import reconciled
from cyclone.server.crud import DryRunQuery
from cyclone.server.integration_records import (
    keep_stored_secrets,
    list_integration_secrets,
    read_integration_secret,
    secret_object,
    spec_of_secret,
    to_api,
)
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.objects import ObjectMeta, check_annotations, resolve_name
from cyclone.server.scmrepos import RESOLVER, check_literal_urls, tenant_allows_local
from cyclone.server.sonarqube import check_sonarqube
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import read_tenant
from cyclone.server.watchdog import with_watcher_choice


def _dump_spec(spec: IntegrationSpec) -> dict:
    return spec.to_object()


def _secret_object(name: str, namespace: str, integration: Integration, spec: dict,
                   stored: dict | None = None) -> dict:
    return secret_object(name, namespace, integration.spec.type.value, spec,
                         labels=integration.metadata.labels or {},
                         annotations=with_watcher_choice(integration.metadata.annotations or {},
                                                         stored))


def _checked_name(body: Integration, name: str | None = None) -> str:
    """The integration's name (from the path, `metadata.name`, or generated from its alias),
    once the body keeps the api's rules and its annotations are valid."""
    annotations = body.metadata.annotations or {}
    check_annotations(annotations)
    name = name or body.metadata.name or resolve_name(ObjectMeta(annotations=annotations),
                                                      "integration")
    check_rules(body.model_copy(update={"metadata": body.metadata.model_copy(
        update={"name": body.metadata.name or name})}))
    return name


def _check_placement_kept(old: dict, new: dict) -> None:
    """An opened cluster keeps where its objects are until it is closed."""
    if not old.get("isWorkerCluster"):
        return
    for field in ("clusterName", "namespace", "pvc", "isControlCluster"):
        if (old.get(field) or None) != (new.get(field) or None):
            raise errors.Conflict(f"spec.cluster.{field} cannot change while the cluster is "
                                  "open; close it first")


router = APIRouter(tags=["integrations"])


async def check_integration_urls(state: ServerState, tenant: str, spec: dict) -> None:
    """422 for an SCM server on a local address, unless the tenant may use them, and for a
    SonarQube integration whose server says its token is not valid (`sonarqube.py`)."""
    if (spec.get("scm") or {}).get("server"):
        check_literal_urls(spec, await tenant_allows_local(state, tenant))
    if spec.get("type") == "SonarQube":
        await check_sonarqube(spec, tenant, allow_local=await tenant_allows_local(state, tenant),
                              resolver=state.extras.get(RESOLVER))


@router.get("/integrations")
async def list_integrations(
    query: ListQuery = Depends(list_query),
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    await read_tenant(state.cluster, tenant)
    return paginate([to_api(s) for s in await list_integration_secrets(state.cluster, tenant)],
                    query)


@router.post("/integrations", status_code=201)
async def create_integration(
    body: Integration,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
    dry_run: DryRunQuery = False,
) -> dict:
    """Store an integration; with ``dryRun``, check it alike and answer what would be
    stored (credentials masked) without storing it."""
    name = _checked_name(body)
    await read_tenant(state.cluster, tenant)
    if name in RESERVED_SECRET_NAMES:
        raise errors.Invalid(f"metadata.name: {name!r} is reserved by Cyclone")
    namespace = keys.tenant_namespace(tenant)
    await check_integration_urls(state, tenant, _dump_spec(body.spec))
    created = await create_named(
        state.cluster,
        _secret_object(name, namespace, body, keep_stored_secrets(_dump_spec(body.spec), {})),
        "integration", dry_run=dry_run)
    return to_api(created)


@router.get("/integrations/{integration}")
async def get_integration(
    integration: str,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> dict:
    return to_api(await read_integration_secret(state.cluster, tenant, integration))


@router.put("/integrations/{integration}")
async def update_integration(
    integration: str,
    body: Integration,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
    dry_run: DryRunQuery = False,
) -> dict:
    _checked_name(body, integration)
    if body.metadata.name and body.metadata.name != integration:
        raise errors.BadRequest(f"metadata.name {body.metadata.name!r} is not {integration!r}")
    stored = await read_integration_secret(state.cluster, tenant, integration)
    old_spec = spec_of_secret(stored)
    if old_spec.get("type") != body.spec.type:
        raise errors.BadRequest("the type of an integration cannot change")
    spec = keep_stored_secrets(_dump_spec(body.spec), old_spec)
    await check_integration_urls(state, tenant, spec)
    if body.spec.type == "Cluster":
        _check_placement_kept(old_spec.get("cluster") or {}, spec["cluster"])
        spec["cluster"]["isWorkerCluster"] = bool(old_spec.get("cluster", {})
                                                  .get("isWorkerCluster"))
    fresh = _secret_object(integration, keys.tenant_namespace(tenant), body, spec, stored)
    fresh["metadata"]["resourceVersion"] = stored["metadata"].get("resourceVersion")
    if dry_run:
        fresh["metadata"]["creationTimestamp"] = stored["metadata"].get("creationTimestamp")
        return to_api(fresh)
    return to_api(await state.cluster.replace(fresh))


@router.delete("/integrations/{integration}", status_code=204)
async def delete_integration(
    integration: str,
    tenant: str = Depends(require_tenant),
    state: ServerState = Depends(server_state),
) -> Response:
    secret = await read_integration_secret(state.cluster, tenant, integration)
    spec = spec_of_secret(secret)
    try:
        await state.cluster.delete(kinds.SECRET, integration, keys.tenant_namespace(tenant))
    except errors.NotFound:
        pass
    if spec.get("type") == "Cluster" and (spec.get("cluster") or {}).get("isWorkerCluster"):
        await reconciled(state, tenant)
    return Response(status_code=204)
