"""Create, list, get, update and delete of a Cyclone kind within a scope, as a router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Response

from cyclone.engine.runstart import validate_object
from cyclone.kube import errors
from cyclone.kube.kinds import Kind
from cyclone.server.listing import ListQuery, list_query, paginate
from cyclone.server.objects import ObjectBody, build_object, resolve_name, updated_object
from cyclone.server.scopes import Scope, get_owned

Prepare = Callable[[Scope, dict], Awaitable[None]]
AfterDelete = Callable[[Scope, dict], Awaitable[None]]
Present = Callable[[dict], dict]
"""The object as answers show it (write-only fields masked)."""
KeepStored = Callable[[dict, dict], dict]
"""(updated object, stored object) → the object to write (write-only fields kept)."""


async def _nothing(scope: Scope, obj: dict) -> None:
    return None


def _as_stored(obj: dict) -> dict:
    return obj


def _as_sent(obj: dict, stored: dict) -> dict:
    return obj


@dataclass(frozen=True)
class KindRoutes:
    kind: Kind
    what: str
    path: str
    scope: Callable[..., Awaitable[Scope]]
    tag: str
    prepare: Prepare = _nothing
    after_delete: AfterDelete = _nothing
    extra_labels: tuple[tuple[str, str], ...] = ()
    present: Present = _as_stored
    keep_stored: KeepStored = _as_sent
    description: str | None = None
    """Said on every route of the kind in the OpenAPI document."""


def _labels(spec: KindRoutes, scope: Scope) -> dict[str, str]:
    return {**scope.labels, **dict(spec.extra_labels)}


def _scoped(spec: KindRoutes, scope: Scope) -> Scope:
    if not spec.extra_labels:
        return scope
    return Scope(scope.tenant, scope.namespace, scope.cluster, scope.project, scope.workflow,
                 labels=_labels(spec, scope))


async def list_objects(spec: KindRoutes, scope: Scope) -> list[dict]:
    listed = await scope.cluster.list(spec.kind, scope.namespace,
                                      label_selector=_scoped(spec, scope).selector)
    return listed.items


async def create_object(spec: KindRoutes, scope: Scope, body: ObjectBody) -> dict:
    name = resolve_name(body.metadata, spec.what)
    obj = build_object(spec.kind, body, name, scope.namespace, _labels(spec, scope))
    await spec.prepare(scope, obj)
    validate_object(obj)
    try:
        return await scope.cluster.create(obj, namespace=scope.namespace)
    except errors.AlreadyExists as exc:
        raise errors.AlreadyExists(f"{spec.what} {name!r} already exists") from exc


async def update_object(spec: KindRoutes, scope: Scope, name: str, body: ObjectBody) -> dict:
    stored = await get_owned(_scoped(spec, scope), spec.kind, name, spec.what)
    obj = spec.keep_stored(updated_object(stored, body, _labels(spec, scope)), stored)
    await spec.prepare(scope, obj)
    validate_object(obj)
    return await scope.cluster.replace(obj)


async def delete_object(spec: KindRoutes, scope: Scope, name: str) -> None:
    obj = await get_owned(_scoped(spec, scope), spec.kind, name, spec.what)
    await spec.after_delete(scope, obj)
    try:
        await scope.cluster.delete(spec.kind, name, scope.namespace,
                                   propagation_policy="Background")
    except errors.NotFound:
        pass


def crud_router(spec: KindRoutes) -> APIRouter:
    router = APIRouter(tags=[spec.tag])
    item_path = spec.path + "/{name}"

    @router.get(spec.path, name=f"list_{spec.kind.plural}",
                summary=f"List {spec.kind.plural}", description=spec.description)
    async def list_route(query: ListQuery = Depends(list_query),
                         scope: Scope = Depends(spec.scope)) -> dict:
        return paginate([spec.present(o) for o in await list_objects(spec, scope)], query)

    @router.post(spec.path, status_code=201, name=f"create_{spec.kind.plural}",
                 summary=f"Create a {spec.what}", description=spec.description)
    async def create_route(body: ObjectBody, scope: Scope = Depends(spec.scope)) -> dict:
        return spec.present(await create_object(spec, scope, body))

    @router.get(item_path, name=f"get_{spec.kind.plural}", summary=f"Get a {spec.what}",
                description=spec.description)
    async def get_route(name: str, scope: Scope = Depends(spec.scope)) -> dict:
        return spec.present(await get_owned(_scoped(spec, scope), spec.kind, name, spec.what))

    @router.put(item_path, name=f"update_{spec.kind.plural}",
                summary=f"Update a {spec.what}", description=spec.description)
    async def update_route(name: str, body: ObjectBody,
                           scope: Scope = Depends(spec.scope)) -> dict:
        return spec.present(await update_object(spec, scope, name, body))

    @router.delete(item_path, status_code=204, name=f"delete_{spec.kind.plural}",
                   summary=f"Delete a {spec.what}")
    async def delete_route(name: str, scope: Scope = Depends(spec.scope)) -> Response:
        await delete_object(spec, scope, name)
        return Response(status_code=204)

    return router
