"""Stage templates (`/templates`) and resource types (`/resourcetypes`).

A tenant sees its own and the built-in ones of the `cyclone-system` namespace; built-ins are
read-only.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Response

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.server.builtins import SYSTEM_NAMESPACE
from cyclone.server.crud import (
    KindRoutes,
    create_object,
    delete_object,
    dry_run_query,
    list_objects,
    update_object,
)
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.objects import ObjectBody
from cyclone.server.scopes import Scope, get_owned, tenant_scope
from cyclone.server.validation import check_secret_references, check_stage_tenancy


async def _stage_within_tenant(scope: Scope, obj: dict) -> None:
    await check_stage_tenancy(scope.cluster, scope.tenant, obj)


async def _resource_type_within_tenant(scope: Scope, obj: dict) -> None:
    check_secret_references(scope.tenant, obj, "resource type")


STAGE_TEMPLATES = KindRoutes(kinds.STAGE, "template", "/templates", tenant_scope, "templates",
                             prepare=_stage_within_tenant,
                             extra_labels=((keys.LABEL_STAGE_TEMPLATE, "true"),))
RESOURCE_TYPES = KindRoutes(kinds.RESOURCE, "resourcetype", "/resourcetypes", tenant_scope,
                            "resourcetypes", prepare=_resource_type_within_tenant,
                            extra_labels=((keys.LABEL_RESOURCE_TEMPLATE, "true"),))


def _system_scope(spec: KindRoutes, scope: Scope) -> Scope:
    return Scope(keys.DEFAULT_TENANT, SYSTEM_NAMESPACE, scope.cluster,
                 labels={**dict(spec.extra_labels), keys.LABEL_BUILTIN: "true"})


def is_builtin(obj: dict) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(keys.LABEL_BUILTIN) == "true"


async def visible_objects(spec: KindRoutes, scope: Scope) -> list[dict]:
    own = await list_objects(spec, scope)
    if scope.namespace == SYSTEM_NAMESPACE:
        return own
    names = {o["metadata"]["name"] for o in own}
    builtin = await list_objects(spec, _system_scope(spec, scope))
    return own + [o for o in builtin if o["metadata"]["name"] not in names]


async def get_shared(spec: KindRoutes, scope: Scope, name: str) -> dict:
    scoped = Scope(scope.tenant, scope.namespace, scope.cluster,
                   labels=dict(spec.extra_labels))
    try:
        return await get_owned(scoped, spec.kind, name, spec.what)
    except errors.NotFound:
        if scope.namespace == SYSTEM_NAMESPACE:
            raise
    return await get_owned(_system_scope(spec, scope), spec.kind, name, spec.what)


Operation = Literal["pull", "push"]


def with_operation(types: list[dict], operation: str | None) -> list[dict]:
    """The resource types that declare `operation` in `spec.operations` (all when None)."""
    if operation is None:
        return types
    return [t for t in types if operation in ((t.get("spec") or {}).get("operations") or [])]


def shared_router(spec: KindRoutes) -> APIRouter:
    router = APIRouter(tags=[spec.tag])
    item = spec.path + "/{name}"

    if spec is RESOURCE_TYPES:
        @router.get(spec.path, name=f"list_{spec.tag}", summary=f"List {spec.tag}")
        async def list_types_route(
            query: ListQuery = Depends(list_query),
            scope: Scope = Depends(tenant_scope),
            operation: Operation | None = Query(None, description=(
                "Only the types whose `spec.operations` include it")),
        ) -> dict:
            return paginate(with_operation(await visible_objects(spec, scope), operation),
                            query)
    else:
        @router.get(spec.path, name=f"list_{spec.tag}", summary=f"List {spec.tag}")
        async def list_route(query: ListQuery = Depends(list_query),
                             scope: Scope = Depends(tenant_scope)) -> dict:
            return paginate(await visible_objects(spec, scope), query)

    @router.post(spec.path, status_code=201, name=f"create_{spec.tag}",
                 summary=f"Create a {spec.what}")
    async def create_route(body: ObjectBody, scope: Scope = Depends(tenant_scope),
                           dry_run: bool = Depends(dry_run_query)) -> dict:
        body.metadata.labels.pop(keys.LABEL_BUILTIN, None)
        return await create_object(spec, scope, body, dry_run)

    @router.get(item, name=f"get_{spec.tag}", summary=f"Get a {spec.what}")
    async def get_route(name: str, scope: Scope = Depends(tenant_scope)) -> dict:
        return await get_shared(spec, scope, name)

    @router.put(item, name=f"update_{spec.tag}", summary=f"Update a {spec.what}")
    async def update_route(name: str, body: ObjectBody, scope: Scope = Depends(tenant_scope),
                           dry_run: bool = Depends(dry_run_query)) -> dict:
        if is_builtin(await get_shared(spec, scope, name)):
            raise errors.Forbidden(f"built-in {spec.what} {name!r} is read-only")
        body.metadata.labels.pop(keys.LABEL_BUILTIN, None)
        return await update_object(spec, scope, name, body, dry_run)

    @router.delete(item, status_code=204, name=f"delete_{spec.tag}",
                   summary=f"Delete a {spec.what}")
    async def delete_route(name: str, scope: Scope = Depends(tenant_scope)) -> Response:
        if is_builtin(await get_shared(spec, scope, name)):
            raise errors.Forbidden(f"built-in {spec.what} {name!r} is read-only")
        await delete_object(spec, scope, name)
        return Response(status_code=204)

    return router


def templates_router() -> APIRouter:
    router = APIRouter()
    router.include_router(shared_router(STAGE_TEMPLATES))
    router.include_router(shared_router(RESOURCE_TYPES))
    return router
