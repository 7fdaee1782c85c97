"""A stage of a run: its live log, containers, inputs, outputs, events, pod YAML and artifacts; and
log search across a run.

- `…/runs/{r}/stages/{s}` — the stage panel: a fragment for htmx (the run page shows it in a
  side panel), a full page otherwise.
- `…/runs/{r}/stages/{s}/log?container=` — the stored log as a text/plain attachment.
- `…/runs/{r}/artifacts/{a}` — an artifact of the run, for the signed-in browser.
- `…/runs/{r}/search?q=` — every stage's log searched; a fragment for htmx.
- `/ui/streams/logs/{p}/{w}/{r}/{s}?container=` — the live log as Server-Sent Events, lines
  batched (one event carries every whole line read at once), `: keep-alive` comments while
  the log is quiet, then `event: end`.

Every route first reads the run through the session's workflow scope: another tenant's
run, stage or log is a 404 as if it did not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse

from cyclone.api import keys
from cyclone.engine.core.masking import Masker
from cyclone.engine.core.stagestart import REASON_REUSED
from cyclone.engine.placement import execution_target, read_policy
from cyclone.kube import errors, kinds
from cyclone.server.artifacts.routes import artifact_store_for
from cyclone.server.artifacts.store import ArtifactNotFound, InvalidArtifact, check_artifact_name
from cyclone.server.logs.routes import follow_stage_log, log_store_for, stored_log
from cyclone.server.logs.secrets import control_secret_values, pod_secret_values
from cyclone.server.logs.store import InvalidLogName, LogRef, RunRef, check_segment
from cyclone.server.run_events import list_run_events
from cyclone.server.run_stream import SSE_HEADERS
from cyclone.server.scopes import Scope, get_owned
from cyclone.server.stream_auth import token_checker, until_revoked
from cyclone.ui import log_search, stage_view
from cyclone.ui.dag_view import stage_phase
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.templating import render
from cyclone.ui.urls import log_stream_url, run_url, stage_url

router = ui_router()

RUN_URL = "/projects/{project}/workflows/{workflow}/runs/{run}"
STAGE_URL = RUN_URL + "/stages/{stage}"
STREAM_URL = "/ui/streams/logs/{project}/{workflow}/{run}/{stage}"
KEEPALIVE_SECONDS = 15.0


async def _run_of(session: UiSession, project: str, workflow: str, run: str
                  ) -> tuple[Scope, dict]:
    scope = await session.workflow_scope(project, workflow)
    return scope, await get_owned(scope, kinds.WORKFLOW_RUN, run, "workflowrun")


REUSE_HOPS = 20
"""Longest chain of retries followed back to the run that ran a reused stage."""


async def _ran_in(scope: Scope, run: dict, stage: str) -> dict:
    """The run whose pod ran `stage`: `run` itself, or, for a stage a retry reused, the run
    it was reused from (followed back through `spec.retryOf` while it is still stored)."""
    current = run
    for _ in range(REUSE_HOPS):
        entry = stage_view.stage_entry(current, stage) or {}
        previous = (current.get("spec") or {}).get("retryOf")
        if (entry.get("status") or {}).get("reason") != REASON_REUSED or not previous:
            break
        try:
            current = await get_owned(scope, kinds.WORKFLOW_RUN, previous, "workflowrun")
        except errors.NotFound:
            break
    return current


def _run_ref(scope: Scope, project: str, workflow: str, run: dict) -> RunRef:
    meta = run["metadata"]
    return RunRef(scope.tenant, project, workflow, meta["name"], uid=meta.get("uid") or "")


def _check_stage(stage: str) -> str:
    try:
        return check_segment(stage, "stage")
    except InvalidLogName as err:
        raise errors.NotFound(f"stage {stage!r} not found") from err


async def _stage_pod(scope: Scope, run: dict, entry: dict | None) -> tuple[dict | None, str]:
    """The stage's pod and, when it is not shown, why. Only a pod in a namespace of the
    control cluster the tenant's pods may run in is read (as the run's Events are)."""
    pod_ref = (entry or {}).get("pod") or {}
    name, namespace = pod_ref.get("name"), pod_ref.get("namespace")
    if not name or not namespace:
        return None, "the stage has no pod yet"
    target = execution_target(run)
    if target.cluster != keys.CONTROL_CLUSTER_NAME:
        return None, f"the pod runs on cluster {target.cluster!r}; it is not read here"
    policy = await read_policy(scope.cluster, scope.tenant, [keys.CONTROL_CLUSTER_NAME])
    if not policy.runs_in(keys.CONTROL_CLUSTER_NAME, namespace):
        return None, "the pod is outside the tenant's namespaces"
    try:
        return await scope.cluster.get(kinds.POD, name, namespace), ""
    except errors.NotFound:
        return None, f"pod {name!r} no longer exists"


async def _masker(scope: Scope, pod: dict) -> Masker:
    values = [*await pod_secret_values(scope.cluster, pod),
              *await control_secret_values(scope.cluster, pod, scope.namespace)]
    return Masker(values)


async def _object(scope: Scope, kind: kinds.Kind, name: str) -> dict | None:
    """An object of the tenant (the run's Stage or Workflow), None when it is gone."""
    try:
        return await scope.cluster.get(kind, name, scope.namespace)
    except errors.ApiError:
        return None


async def _events(run_name: str, scope: Scope, stage: str, pod_name: str | None) -> list[dict]:
    listed = await list_run_events(run_name, scope)
    return stage_view.stage_events(listed["items"], stage, pod_name)


@router.get(STAGE_URL, response_class=HTMLResponse)
async def stage_panel(request: Request, project: str, workflow: str, run: str, stage: str,
                      container: str | None = Query(default=None, max_length=253),
                      session: UiSession = Depends(ui_session)) -> HTMLResponse:
    scope, run_obj = await _run_of(session, project, workflow, run)
    _check_stage(stage)
    entry = stage_view.stage_entry(run_obj, stage)
    if not stage_view.stage_of_run(run_obj, None, stage):
        workflow_obj = await _object(scope, kinds.WORKFLOW, workflow)
        if not stage_view.stage_of_run(run_obj, workflow_obj, stage):
            raise errors.NotFound(f"stage {stage!r} is not part of run {run!r}")
    ran_in = await _ran_in(scope, run_obj, stage)
    ref = _run_ref(scope, project, workflow, ran_in)
    pod, pod_note = await _stage_pod(scope, run_obj, entry)
    stage_obj = await _object(scope, kinds.STAGE, stage)
    store = log_store_for(session.state)
    rows = stage_view.container_rows(pod, store.containers(ref, stage))
    shown = stage_view.default_container(rows, container)
    complete = None
    if shown is not None:
        log = LogRef(ref, stage, shown)
        complete = store.exists(log) and store.state(log).complete
    artifacts = [a for a in artifact_store_for(session.state).list(ref)
                 if a.stage in (None, stage)]
    context = {
        "project": project, "workflow": workflow, "run": run, "stage": stage,
        "run_obj": run_obj, "entry": entry or {},
        "phase": stage_phase(entry),
        "live": stage_view.log_is_live(entry, run_obj, complete),
        "containers": rows,
        "container": shown,
        "inputs": stage_view.stage_inputs(stage_obj, run_obj,
                                          await _object(scope, kinds.WORKFLOW, workflow)),
        "outputs": [o for o in (entry or {}).get("outputs") or [] if isinstance(o, dict)],
        "events": await _events(run, scope, stage, (pod or {}).get("metadata", {}).get("name")),
        "pod_yaml": stage_view.pod_yaml(pod, await _masker(scope, pod), stage_obj)
        if pod else "",
        "pod_note": pod_note,
        "artifacts": artifacts,
        "run_url": run_url(project, workflow, run),
        "stage_url": stage_url(project, workflow, run, stage),
        "stream_url": log_stream_url(project, workflow, run, stage),
        "reused_from": None if ran_in is run_obj else ran_in["metadata"]["name"],
        "log_stage_url": stage_url(project, workflow, ran_in["metadata"]["name"], stage),
        "fragment": bool(request.headers.get("HX-Request")),
    }
    template = "stage_panel.html" if context["fragment"] else "stage.html"
    return render(request, template, context)


@router.get(STAGE_URL + "/log")
async def stage_log(request: Request, project: str, workflow: str, run: str, stage: str,
                    container: str | None = Query(default=None, max_length=253),
                    session: UiSession = Depends(ui_session)) -> StreamingResponse:
    await _run_of(session, project, workflow, run)
    body, filename = await stored_log(session.state, session.tenant, project, workflow, run,
                                      _check_stage(stage), container)
    return StreamingResponse(body, media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff"})


@router.get(RUN_URL + "/artifacts/{artifact}")
async def artifact_download(project: str, workflow: str, run: str, artifact: str,
                            session: UiSession = Depends(ui_session)) -> FileResponse:
    scope, run_obj = await _run_of(session, project, workflow, run)
    store = artifact_store_for(session.state)
    ref = _run_ref(scope, project, workflow, run_obj)
    try:
        store.info(ref, check_artifact_name(artifact))
    except (ArtifactNotFound, InvalidArtifact) as err:
        raise errors.NotFound(f"artifact {artifact!r} not found") from err
    return FileResponse(store.path(ref, artifact), filename=artifact,
                        media_type="application/octet-stream")


@router.get(RUN_URL + "/search", response_class=HTMLResponse)
async def run_log_search(request: Request, project: str, workflow: str, run: str,
                         q: str = Query(default="", max_length=1000),
                         session: UiSession = Depends(ui_session)) -> HTMLResponse:
    scope, run_obj = await _run_of(session, project, workflow, run)
    ref = _run_ref(scope, project, workflow, run_obj)
    result, message = None, ""
    try:
        result = await asyncio.to_thread(
            log_search.search_logs,
            log_search.run_logs(log_store_for(session.state), ref, run_obj), q)
    except log_search.SearchQueryError as err:
        message = str(err)
    context = {"project": project, "workflow": workflow, "run": run, "q": q,
               "result": result, "message": message,
               "run_url": run_url(project, workflow, run),
               "stage_url": lambda stage: stage_url(project, workflow, run, stage),
               "per_log": log_search.HITS_PER_LOG, "in_all": log_search.HITS_IN_ALL}
    fragment = bool(request.headers.get("HX-Request"))
    return render(request, "logs/search_results.html" if fragment else "logs/search.html",
                  context)


async def with_keepalive(chunks: AsyncIterator[bytes], every: float
                         ) -> AsyncIterator[bytes | None]:
    """`chunks`, with None whenever `every` seconds pass without one."""
    iterator = aiter(chunks)
    waiting: asyncio.Future[bytes] | None = None
    try:
        while True:
            if waiting is None:
                waiting = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({waiting}, timeout=every)
            if not done:
                yield None
                continue
            try:
                chunk = waiting.result()
            except StopAsyncIteration:
                return
            waiting = None
            yield chunk
    finally:
        if waiting is not None:
            waiting.cancel()


async def sse_batches(chunks: AsyncIterator[bytes], keepalive: float = KEEPALIVE_SECONDS
                      ) -> AsyncIterator[bytes]:
    """Whole lines as Server-Sent Events, every line read at once in one event (one `data:`
    field per line), then `event: end`. A 100,000-line log is a few hundred events, not
    100,000. A `: keep-alive` comment goes out when the log is quiet for `keepalive`
    seconds, so proxies keep a silent stage's stream open."""
    pending = b""
    async for chunk in with_keepalive(chunks, keepalive):
        if chunk is None:
            yield b": keep-alive\n\n"
            continue
        pending += chunk
        cut = pending.rfind(b"\n")
        if cut < 0:
            continue
        lines, pending = pending[:cut].split(b"\n"), pending[cut + 1:]
        yield b"".join(b"data: " + line.rstrip(b"\r") + b"\n" for line in lines) + b"\n"
    if pending:
        yield b"data: " + pending.rstrip(b"\r") + b"\n\n"
    yield b"event: end\ndata: \n\n"


@router.get(STREAM_URL)
async def stream_stage_log(request: Request, project: str, workflow: str, run: str,
                           stage: str,
                           container: str | None = Query(default=None, max_length=253),
                           session: UiSession = Depends(ui_session)) -> Response:
    """The live log; it ends when the session's token is revoked (asked at keep-alives)."""
    await _run_of(session, project, workflow, run)
    chunks = await follow_stage_log(session.state, session.tenant, project, workflow, run,
                                    _check_stage(stage), container or None)
    events = until_revoked(sse_batches(chunks),
                           token_checker(request, session.token, session.tenant))
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

