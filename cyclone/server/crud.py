"""Create, list, get, update and delete of a Cyclone kind within a scope, as a router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from cyclone.api import keys
from cyclone.api.references import workflow_reference_errors
from cyclone.engine.runstart import validate_object
from cyclone.kube import errors, kinds
from cyclone.kube.creation import create_named
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


DRY_RUN_ALL = "All"
"""The one ``dryRun`` value, as in Kubernetes: every check runs, nothing is stored."""


def dry_run_query(
    dry_run: str | None = Query(None, alias="dryRun", description=(
        "`All`: check the object as a write would, answer as it would, store nothing.")),
    dryrun: bool = Query(False, description="`true`: as `dryRun=All` (Cyclone v1.2's name)"),
) -> bool:
    if dry_run in (None, ""):
        return dryrun
    if dry_run != DRY_RUN_ALL:
        raise errors.Invalid(f"dryRun: must be {DRY_RUN_ALL!r}, got {dry_run!r}",
                             details={"causes": [{"field": "dryRun",
                                                  "message": f"must be {DRY_RUN_ALL!r}"}]})
    return True


DryRunQuery = Annotated[bool, Depends(dry_run_query)]
"""A route's ``dryRun`` parameter that defaults to False when the route is called as a
function (the web UI and tenant creation call some routes directly)."""


async def check_references(scope: Scope, obj: dict, pending: Sequence[dict] = ()) -> None:
    """Raise `Invalid` naming the field when a Workflow names a stage its namespace lacks
    or an output of a stage that is not upstream (`workflow_reference_errors`).
    `pending`: Stage objects to be written with the workflow, counted as stored."""
    if obj.get("kind") != kinds.WORKFLOW.kind:
        return
    stages = {s["metadata"]["name"]: s
              for s in [*(await scope.cluster.list(kinds.STAGE, scope.namespace)).items,
                        *pending]}
    where = f"project {scope.project}" if scope.project else f"namespace {scope.namespace}"
    own = [name for name, s in stages.items()
           if ((s["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT)) == scope.project]
    problems = workflow_reference_errors(obj, stages, where, own)
    if problems:
        name = obj["metadata"].get("name")
        raise errors.Invalid(f"invalid Workflow {name!r}: " + "; ".join(map(str, problems)),
                             details={"causes": [{"field": p.path, "message": p.message}
                                                 for p in problems]})


async def _admit(spec: KindRoutes, scope: Scope, obj: dict, pending: Sequence[dict] = ()
                 ) -> None:
    await spec.prepare(scope, obj)
    validate_object(obj)
    await check_references(scope, obj, pending)


async def create_object(spec: KindRoutes, scope: Scope, body: ObjectBody,
                        dry_run: bool = False) -> dict:
    name = resolve_name(body.metadata, spec.what)
    obj = build_object(spec.kind, body, name, scope.namespace, _labels(spec, scope))
    await _admit(spec, scope, obj)
    try:
        return await create_named(scope.cluster, obj, spec.what, dry_run=dry_run)
    except errors.AlreadyExists as exc:
        held = await _holder(spec, scope, name)
        if not held:
            raise
        raise errors.AlreadyExists(f"{exc.message} in {held}; {spec.what} names are unique per "
                                   "tenant") from exc


async def _holder(spec: KindRoutes, scope: Scope, name: str) -> str | None:
    """The project (and workflow) holding the object `name` when it is not the scope's:
    the name is taken there, and no update in this scope can reach it."""
    try:
        held = await scope.cluster.get(spec.kind, name, scope.namespace)
    except errors.ApiError:
        return None
    labels = held["metadata"].get("labels") or {}
    project, workflow = labels.get(keys.LABEL_PROJECT), labels.get(keys.LABEL_WORKFLOW)
    if scope.workflow and workflow and (project, workflow) != (scope.project, scope.workflow):
        return f"workflow {workflow!r} of project {project!r}"
    if scope.project and project and project != scope.project:
        return f"project {project!r}"
    return None


async def update_object(spec: KindRoutes, scope: Scope, name: str, body: ObjectBody,
                        dry_run: bool = False, pending: Sequence[dict] = ()) -> dict:
    """`pending`: Stage objects a Workflow's references may name before they are stored
    (the web editor checks a workflow together with its new stages)."""
    stored = await get_owned(_scoped(spec, scope), spec.kind, name, spec.what)
    obj = spec.keep_stored(updated_object(stored, body, _labels(spec, scope)), stored)
    await _admit(spec, scope, obj, pending)
    if dry_run:
        return obj
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
    async def create_route(body: ObjectBody, scope: Scope = Depends(spec.scope),
                           dry_run: bool = Depends(dry_run_query)) -> dict:
        return spec.present(await create_object(spec, scope, body, dry_run))

    @router.get(item_path, name=f"get_{spec.kind.plural}", summary=f"Get a {spec.what}",
                description=spec.description)
    async def get_route(name: str, scope: Scope = Depends(spec.scope)) -> dict:
        return spec.present(await get_owned(_scoped(spec, scope), spec.kind, name, spec.what))

    @router.put(item_path, name=f"update_{spec.kind.plural}",
                summary=f"Update a {spec.what}", description=spec.description)
    async def update_route(name: str, body: ObjectBody, scope: Scope = Depends(spec.scope),
                           dry_run: bool = Depends(dry_run_query)) -> dict:
        return spec.present(await update_object(spec, scope, name, body, dry_run))

    @router.delete(item_path, status_code=204, name=f"delete_{spec.kind.plural}",
                   summary=f"Delete a {spec.what}")
    async def delete_route(name: str, scope: Scope = Depends(spec.scope)) -> Response:
        await delete_object(spec, scope, name)
        return Response(status_code=204)

    return router
