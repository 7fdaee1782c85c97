"""One WorkflowRun as server-sent events, followed through the cluster's watch.

The stream opens with `event: snapshot` (the whole run), then sends `event: change` with
`{"resourceVersion", "status" (without stages), "stages" (only the stages that changed),
"removedStages"}` for every change of the run's status, and `event: end` once the run is
terminal (after its last change) or gone. Every event carries `id: <resourceVersion>`; a
client reconnecting with `Last-Event-ID` equal to the run's current version gets no second
snapshot. A `: keep-alive` comment is sent every `heartbeat` seconds without events, and at
each heartbeat `still_allowed` is asked whether the caller may still read the run (a revoked
token ends the stream).

The watch is read by a task that the stream cancels when it ends or the client goes away, so
a stream holds no worker and polls nothing; should that task die, the stream closes at its
next heartbeat and the client reconnects.

A large run (`cyclone.api.stagechunks`) is followed through two watches: the run, whose
events carry its summary, and its stage chunks, whose events carry the stages that changed
(`id:` is then the chunk's resourceVersion). Its stages are assembled once more when it
ends, so `end` comes after its last stage change whichever watch delivered first.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from cyclone.api import stagechunks
from cyclone.engine.core.phases import is_terminal
from cyclone.engine.runstages import read_run
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.runs import RUNS
from cyclone.server.scopes import Scope, get_owned, workflow_scope
from cyclone.server.stream_auth import AllowedEvery, bearer_token, token_checker

log = logging.getLogger(__name__)
DEFAULT_HEARTBEAT = 15.0
WATCH_TIMEOUT_SECONDS = 290
"""How long one watch request lasts before the stream re-watches from its last version."""
RETRY_SECONDS = 1.0
"""Pause before watching again after the watch failed (not after it ended normally)."""
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

router = APIRouter(tags=["workflowruns"])


def run_change(before: dict | None, after: dict) -> dict | None:
    """The change event from `before` to `after` (two versions of one run); None when the
    run's status did not change.

    `status` is the whole status without its stages; `stages` has only the stages whose
    entry differs, `removedStages` the names no longer in it.
    """
    old = ((before or {}).get("status") or {})
    new = after.get("status") or {}
    old_stages = old.get("stages") or {}
    new_stages = new.get("stages") or {}
    changed = {name: entry for name, entry in new_stages.items()
               if old_stages.get(name) != entry}
    removed = sorted(name for name in old_stages if name not in new_stages)
    rest = {key: value for key, value in new.items() if key != "stages"}
    old_rest = {key: value for key, value in old.items() if key != "stages"}
    if not changed and not removed and rest == old_rest:
        return None
    return {"resourceVersion": version_of(after), "status": rest, "stages": changed,
            "removedStages": removed}


def version_of(run: dict) -> str:
    return str((run.get("metadata") or {}).get("resourceVersion") or "")


def uid_of(run: dict) -> str:
    return str((run.get("metadata") or {}).get("uid") or "")


def run_phase(run: dict) -> str | None:
    return ((run.get("status") or {}).get("overall") or {}).get("phase")


def run_finished(run: dict) -> bool:
    return is_terminal(run_phase(run))


def sse_event(event: str, data: object, event_id: str | None = None) -> str:
    """One server-sent event; `data` as one line of JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


KEEP_ALIVE = ": keep-alive\n\n"


@dataclass(frozen=True)
class RunTarget:
    """The run a stream follows: where it lives and how to tell it is still the same run of
    the caller's scope."""

    cluster: Cluster
    namespace: str
    name: str
    owns: Callable[[dict], bool]


async def _pump(target: RunTarget, version: str, out: asyncio.Queue) -> None:
    """Put every new version of the run on `out` (None when it is deleted), watching from
    `version`, resuming where a watch ended, and re-listing the run when the version is gone
    (the list's version, unlike the object's, is recent enough to watch from)."""
    selector = f"metadata.name={target.name}"
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            async for event in target.cluster.watch(
                    kinds.WORKFLOW_RUN, target.namespace, field_selector=selector,
                    resource_version=version, timeout_seconds=WATCH_TIMEOUT_SECONDS):
                obj = event.object
                if event.type == "BOOKMARK":
                    version = version_of(obj) or version
                    continue
                if (obj.get("metadata") or {}).get("name") != target.name:
                    continue
                version = version_of(obj) or version
                await out.put(None if event.type == "DELETED" else obj)
        except errors.Gone:
            try:
                listed = await target.cluster.list(kinds.WORKFLOW_RUN, target.namespace,
                                                   field_selector=selector)
            except errors.ApiError as err:
                await _pause_after(target, err)
                continue
            found = [obj for obj in listed.items
                     if (obj.get("metadata") or {}).get("name") == target.name]
            await out.put(found[0] if found else None)
            if not found:
                return
            version = listed.resource_version
            continue
        except errors.ApiError as err:
            await _pause_after(target, err)
            continue
        if loop.time() - started < RETRY_SECONDS:
            await asyncio.sleep(RETRY_SECONDS)


@dataclass(frozen=True)
class ChunkChange:
    """A stage chunk of the followed run as written (`_pump_chunks`)."""

    chunk: dict


async def _pump_chunks(target: RunTarget, version: str | None, out: asyncio.Queue) -> None:
    """Put every written stage chunk of the run on `out` as a `ChunkChange`, watching from
    `version`; when the version is gone, every chunk as listed (a stage changed meanwhile
    is then sent once, from the list)."""
    selector = f"{stagechunks.LABEL_CHUNK_OF}={target.name}"
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            async for event in target.cluster.watch(
                    kinds.WORKFLOW_RUN_STAGES, target.namespace, label_selector=selector,
                    resource_version=version, timeout_seconds=WATCH_TIMEOUT_SECONDS):
                obj = event.object
                version = version_of(obj) or version
                if event.type in ("ADDED", "MODIFIED"):
                    await out.put(ChunkChange(obj))
        except errors.Gone:
            try:
                listed = await target.cluster.list(kinds.WORKFLOW_RUN_STAGES, target.namespace,
                                                   label_selector=selector)
            except errors.ApiError as err:
                await _pause_after(target, err)
                continue
            for chunk in listed.items:
                await out.put(ChunkChange(chunk))
            version = listed.resource_version
            continue
        except errors.ApiError as err:
            await _pause_after(target, err)
            continue
        if loop.time() - started < RETRY_SECONDS:
            await asyncio.sleep(RETRY_SECONDS)


def _number(version: str) -> int:
    try:
        return int(version)
    except ValueError:
        return 0


async def _list_chunks(target: RunTarget) -> tuple[list[dict], str]:
    """The stage chunks of the run now, and the version to watch them from (none and ""
    when they cannot be read: the watch then lists them)."""
    try:
        listed = await target.cluster.list(
            kinds.WORKFLOW_RUN_STAGES, target.namespace,
            label_selector=f"{stagechunks.LABEL_CHUNK_OF}={target.name}")
    except errors.ApiError:
        return [], ""
    return listed.items, listed.resource_version or ""


def _with_chunk(current: dict, chunk: dict) -> dict:
    """The assembled run ``current`` with the stage entries of one of its chunks."""
    if not stagechunks.belongs_to(chunk, current):
        return current
    status = current.get("status") or {}
    stages = {**(status.get("stages") or {}),
              **((chunk.get("status") or {}).get("stages") or {})}
    return {**current, "status": {**status, "stages": stages}}


def _with_stages_of(run: dict, current: dict) -> dict:
    """A new version of a large run (stored without stages) with the stages followed so
    far."""
    if stagechunks.recorded_chunks(run) is None:
        return run
    stages = (current.get("status") or {}).get("stages") or {}
    return {**run, "status": {**(run.get("status") or {}), "stages": stages}}


async def _pause_after(target: RunTarget, err: errors.ApiError) -> None:
    log.info("watch of workflowrun %s/%s failed, watching again: %s", target.namespace,
             target.name, err)
    await asyncio.sleep(RETRY_SECONDS)


async def follow_run(target: RunTarget, run: dict, *, last_event_id: str | None = None,
                     heartbeat: float = DEFAULT_HEARTBEAT,
                     still_allowed: Callable[[], Awaitable[bool]] | None = None
                     ) -> AsyncIterator[str]:
    """The events of the run `run` (as the caller just read it) as SSE text."""
    uid = uid_of(run)
    if last_event_id != version_of(run):
        yield sse_event("snapshot", run, version_of(run))
    if run_finished(run):
        yield sse_event("end", {"reason": "finished", "phase": run_phase(run)}, version_of(run))
        return
    current = run
    seen: dict[str, int] = {}
    """For a large run, the newest resourceVersion of each chunk taken in: an older one
    arriving late from a watch would undo newer entries."""
    queue: asyncio.Queue[dict | ChunkChange | None] = asyncio.Queue()
    pumps = [asyncio.create_task(_pump(target, version_of(run), queue),
                                 name=f"run-stream-{target.namespace}-{target.name}")]
    allowed = AllowedEvery(still_allowed, heartbeat)
    try:
        while True:
            if len(pumps) == 1 and stagechunks.recorded_chunks(current) is not None:
                chunks, version = await _list_chunks(target)
                before = current
                for chunk in chunks:
                    seen[chunk["metadata"]["name"]] = _number(version_of(chunk))
                    current = _with_chunk(current, chunk)
                pumps.append(asyncio.create_task(
                    _pump_chunks(target, version or None, queue),
                    name=f"run-stream-chunks-{target.namespace}-{target.name}"))
                change = run_change(before, current)
                if change is not None:
                    yield sse_event("change", change, version_of(current))
            quiet = False
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                if any(pump.done() for pump in pumps):
                    return
                item, quiet = current, True
            if not await allowed(due=quiet):
                return
            if quiet:
                yield KEEP_ALIVE
                continue
            if isinstance(item, ChunkChange):
                name, event_id = item.chunk["metadata"]["name"], version_of(item.chunk)
                if _number(event_id) <= seen.get(name, 0):
                    continue
                seen[name] = _number(event_id)
                obj = _with_chunk(current, item.chunk)
            else:
                obj = item if item is None else _with_stages_of(item, current)
                event_id = version_of(item) if item is not None else ""
            if obj is None or uid_of(obj) != uid or not target.owns(obj):
                yield sse_event("end", {"reason": "deleted"}, version_of(current))
                return
            if run_finished(obj) and stagechunks.recorded_chunks(obj) is not None:
                obj = await read_run(target.cluster, obj)
            change = run_change(current, obj)
            current = obj
            if change is not None:
                change["resourceVersion"] = event_id
                yield sse_event("change", change, event_id)
            if run_finished(obj):
                yield sse_event("end", {"reason": "finished", "phase": run_phase(obj)},
                                version_of(obj))
                return
    finally:
        for pump in pumps:
            pump.cancel()
        for outcome in await asyncio.gather(*pumps, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("the watch of workflowrun %s/%s failed", target.namespace,
                          target.name, exc_info=outcome)


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def scope_stream(scope: Scope, name: str, *, last_event_id: str | None,
                       heartbeat: float,
                       still_allowed: Callable[[], Awaitable[bool]]) -> StreamingResponse:
    """The stream of run `name` of the workflow scope; NotFound before anything is sent when
    the scope has no such run."""
    run = await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
    target = RunTarget(scope.cluster, scope.namespace, name, scope.owns)
    return event_stream(follow_run(target, run, last_event_id=last_event_id,
                                   heartbeat=heartbeat, still_allowed=still_allowed))


HEARTBEAT_QUERY = Query(DEFAULT_HEARTBEAT, ge=0.5, le=300,
                        description="Seconds between keep-alive comments")


@router.get(
    RUNS.path + "/{name}/stream", summary="Follow a workflowrun as server-sent events",
    response_class=StreamingResponse,
    responses={200: {"description": "`snapshot`, then `change` events, then `end`; "
                     "`: keep-alive` comments in between",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def stream_run(request: Request, name: str, scope: Scope = Depends(workflow_scope),
                     heartbeat: float = HEARTBEAT_QUERY,
                     last_event_id: str | None = Header(default=None)) -> StreamingResponse:
    """The run's `snapshot`, its `change` events and `end`, each with `id:` its
    resourceVersion; send `Last-Event-ID` to resume without a second snapshot."""
    return await scope_stream(scope, name, last_event_id=last_event_id, heartbeat=heartbeat,
                              still_allowed=token_checker(request, bearer_token(request),
                                                          scope.tenant))
