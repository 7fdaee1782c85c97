"""WorkflowRuns: create, list, get, stop, pause, resume, retry, rerun, delete."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request, Response

from cyclone.api import keys
from cyclone.engine.core import runstart as rules
from cyclone.engine.core.gcpod import ANNOTATION_COLLECT_NOW
from cyclone.engine.core.runupdate import run_update
from cyclone.engine.runstart import raise_refusal, start_run
from cyclone.kube import errors, kinds
from cyclone.server.auth import Principal, current_principal, server_state
from cyclone.server.crud import KindRoutes, delete_object, dry_run_query, list_objects
from cyclone.server.listing import (
    ListQuery,
    cluster_page,
    cluster_page_selector,
    continue_query,
    list_query,
    paginate,
)
from cyclone.server.objects import (
    ObjectBody,
    build_object,
    check_annotations,
    check_labels,
    random_suffix,
    resolve_name,
)
from cyclone.server.scopes import Scope, get_owned, workflow_scope
from cyclone.server.state import ServerState

RUNS = KindRoutes(kinds.WORKFLOW_RUN, "workflowrun",
                  "/projects/{project}/workflows/{workflow}/workflowruns", workflow_scope,
                  "workflowruns")
_RUN = RUNS.path + "/{name}"
router = APIRouter(tags=["workflowruns"])


def _run_name(scope: Scope, body: ObjectBody) -> str:
    if body.metadata.name or body.metadata.annotations.get(keys.ANNOTATION_ALIAS, "").strip():
        return resolve_name(body.metadata, "workflowrun")
    return f"{scope.workflow}-{random_suffix()}"[:63]


CLI_USER_AGENT = "cyclone-cli/"


def starter(principal: Principal, via: str) -> str:
    """Who starts a run (`keys.ANNOTATION_STARTED_BY`): the admin or one tenant token."""
    who = ("the admin" if principal.admin
           else f"token {principal.token_id} of tenant {principal.tenant}")
    return f"{who} via {via}"


def api_starter(request: Request, principal: Principal) -> str:
    agent = request.headers.get("user-agent", "")
    return starter(principal, "the CLI" if agent.startswith(CLI_USER_AGENT) else "the API")


async def create_run(scope: Scope, body: ObjectBody, dry_run: bool = False,
                     started_by: str | None = None) -> dict:
    """A new run of the scope's workflow, through the engine's `start_run`; `started_by`
    is recorded as `keys.ANNOTATION_STARTED_BY` (whatever the body said)."""
    obj = build_object(kinds.WORKFLOW_RUN, body, _run_name(scope, body), scope.namespace,
                       scope.labels)
    annotations = obj["metadata"].setdefault("annotations", {})
    annotations.pop(keys.ANNOTATION_STARTED_BY, None)
    annotations.pop(ANNOTATION_COLLECT_NOW, None)
    if started_by:
        annotations[keys.ANNOTATION_STARTED_BY] = started_by
    spec = obj["spec"]
    spec["workflowRef"] = {"apiVersion": keys.API_VERSION, "kind": "Workflow",
                           "name": scope.workflow, "namespace": scope.namespace}
    return await start_run(scope.cluster, obj, dry_run=dry_run)


async def _set_flags(scope: Scope, name: str, flags: dict,
                     annotations: dict | None = None) -> dict:
    await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
    patch: dict = {"spec": flags}
    if annotations:
        patch["metadata"] = {"annotations": annotations}
    return await scope.cluster.patch(kinds.WORKFLOW_RUN, name, patch, scope.namespace)


@router.get(RUNS.path, summary="List workflowruns")
async def list_runs(query: ListQuery = Depends(list_query),
                    continue_: str | None = Depends(continue_query),
                    scope: Scope = Depends(workflow_scope)) -> dict:
    """Without `continue`: the runs of the workflow filtered, sorted (newest first by
    default) and cut by `start` and `limit`, with `metadata.total`; this reads every run.

    With `continue` (empty for the first page): one page of at most `limit` runs read at
    the cluster in name order, and `metadata.continue`, the token of the next page (empty
    on the last). Only label filters combine with it; `start`, a sort other than by name,
    and the `name` and `phase` filters need the whole list and answer 400. A token that is
    not one answers 400; one too old to go on from answers 410 (start again)."""
    if continue_ is None:
        return paginate(await list_objects(RUNS, scope), query)
    selector = cluster_page_selector(query, scope.selector)
    return cluster_page(await scope.cluster.list(
        kinds.WORKFLOW_RUN, scope.namespace, label_selector=selector,
        limit=query.limit or None, continue_=continue_ or None))


@router.post(RUNS.path, status_code=201, summary="Run the workflow")
async def create_run_route(request: Request, body: ObjectBody | None = None,
                           scope: Scope = Depends(workflow_scope),
                           dry_run: bool = Depends(dry_run_query),
                           principal: Principal = Depends(current_principal)) -> dict:
    """Start a run: `spec.stages[].parameters`, `spec.globalVariables` and the rest of a
    WorkflowRunSpec are taken from the body; `workflowRef` is the workflow of the path."""
    return await create_run(scope, body or ObjectBody(), dry_run,
                            api_starter(request, principal))


@router.get(_RUN, summary="Get a workflowrun")
async def get_run(name: str, scope: Scope = Depends(workflow_scope)) -> dict:
    return await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")


UPDATE_ATTEMPTS = 5


async def update_run(scope: Scope, name: str, body: ObjectBody) -> dict:
    """The run with the body's labels and annotations (`run_update` says what may change),
    written over the run as it is now: the engine's status writes in between are kept."""
    if body.metadata.name and body.metadata.name != name:
        raise errors.BadRequest(f"metadata.name {body.metadata.name!r} does not match "
                                f"the path name {name!r}")
    check_labels(body.metadata.labels)
    check_annotations(body.metadata.annotations)
    for _ in range(UPDATE_ATTEMPTS):
        stored = await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
        metadata, refusal = run_update(stored, body.metadata.labels,
                                       body.metadata.annotations, body.spec)
        raise_refusal(refusal)
        obj = {**stored, "metadata": {**stored["metadata"], **metadata}}
        obj.pop("status", None)
        try:
            return await scope.cluster.replace(obj)
        except errors.Conflict:
            continue
    raise errors.Conflict(f"workflowrun {name!r} kept changing; try again")


@router.put(_RUN, summary="Update a workflowrun's labels and annotations")
async def update_run_route(name: str, body: ObjectBody,
                           scope: Scope = Depends(workflow_scope)) -> dict:
    """Replace the run's labels and annotations with the body's. Cyclone's own (the
    project and workflow labels, `*.cyclone.dev/*` records such as started-by) are kept;
    changing one, or any field of `spec`, is refused with 409 naming the field; `status`
    is ignored."""
    return await update_run(scope, name, body)


@router.delete(_RUN, status_code=204, summary="Delete a workflowrun")
async def delete_run(name: str, scope: Scope = Depends(workflow_scope),
                     state: ServerState = Depends(server_state)) -> Response:
    """Delete the run and its stored logs and artifacts (the engine cleans its pods and
    PVC data first)."""
    run = await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
    await delete_object(RUNS, scope, name)
    from cyclone.server.logs.rundata import remove_run_data_of
    from cyclone.server.logs.services import run_data_roots

    await asyncio.to_thread(remove_run_data_of, run_data_roots(state), run)
    return Response(status_code=204)


@router.put(_RUN + "/stop", summary="Stop a workflowrun")
async def stop_run(
    name: str, scope: Scope = Depends(workflow_scope),
    force: bool = Query(default=False, description="Kill the run's pods at once instead "
                        "of giving each its terminationGracePeriodSeconds."),
) -> dict:
    """Ask the engine to stop the run: its running pods get SIGTERM and their own grace
    period (default 30 s) to end, or with `force=true` are killed at once. The run ends
    Cancelled right away; a forced stop also cuts short the grace of a stop before it."""
    return await _set_flags(scope, name, {"stopped": True},
                            {keys.ANNOTATION_STOP_FORCE: "true"} if force else None)


@router.put(_RUN + "/pause", summary="Pause a workflowrun (no new stage starts)")
async def pause_run(name: str, scope: Scope = Depends(workflow_scope)) -> dict:
    return await _set_flags(scope, name, {"paused": True})


@router.put(_RUN + "/resume", summary="Resume a paused workflowrun")
async def resume_run(name: str, scope: Scope = Depends(workflow_scope)) -> dict:
    return await _set_flags(scope, name, {"paused": False})


async def repeat_run(scope: Scope, name: str, how: str, started_by: str | None = None
                     ) -> dict:
    """A new run of run `name`: `rules.RETRY` (from its failed stages) or `rules.RERUN`."""
    old = await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
    if how == rules.RETRY:
        raise_refusal(rules.retry_refusal(old))
    body = ObjectBody.model_validate(rules.repeated_run(old, how, random_suffix()))
    return await create_run(scope, body, started_by=started_by)


@router.post(_RUN + "/retry", status_code=201, summary="Retry a run from its failed stages")
async def retry_run(request: Request, name: str, scope: Scope = Depends(workflow_scope),
                    principal: Principal = Depends(current_principal)) -> dict:
    """A new run with the same spec and `spec.retryOf` naming this one: its succeeded stages
    are reused with their outputs, the rest runs again. A succeeded run has nothing to
    retry: 409."""
    return await repeat_run(scope, name, rules.RETRY, api_starter(request, principal))


@router.post(_RUN + "/rerun", status_code=201, summary="Run a run's stages all again")
async def rerun_run(request: Request, name: str, scope: Scope = Depends(workflow_scope),
                    principal: Principal = Depends(current_principal)) -> dict:
    """A new run with the same spec (parameters, variables, scope) in which every stage
    runs again, whatever the phase of this one."""
    return await repeat_run(scope, name, rules.RERUN, api_starter(request, principal))
