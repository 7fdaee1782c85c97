"""Log routes: stored logs as plain text, and live streams over WebSocket and SSE.

- `GET …/workflowruns/{run}/logs?stage=&container=&download=` — the stored log. Without
  `container` the stage's workload container (the one not named `csc-*`/`wsc-*`); without
  `stage` every stage in the order the stages started, each log under a `==> stage <==`
  header (`==> stage/container <==` for a sidecar's).
  `timestamps=true` prefixes each line with the RFC 3339 time it was stored (as
  `kubectl logs --timestamps`); `sinceSeconds=N` or `sinceTime=<RFC 3339>` leaves out the
  lines stored before (see `linetimes`). The live routes take the same three.
- `WS …/workflowruns/{run}/logstream?stage=&container=` — the log as text frames, from the
  start, live until the container ends; then the socket closes with code 1000. Browsers
  cannot set headers on a WebSocket, so `?token=` and `?tenant=` are accepted too.
- `GET …/workflowruns/{run}/logstream?stage=&container=` with `Accept: text/event-stream`,
  or `GET …/logstream/sse` — the same as Server-Sent Events (one `data:` line per log
  line, then `event: end`), for curl: `curl -N -H 'Accept: text/event-stream' …`.
  Without that Accept header it streams plain text.

Each route answers the data of the run the path names as it is now (by its uid, see
`rundata.py`), and 404 when there is no such run: a run created again under a deleted
run's name never shows the old run's lines.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import chain

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, StreamingResponse

from cyclone.api import keys
from cyclone.engine.core.phases import RUNNING, TERMINAL_PHASES
from cyclone.engine.core.timefmt import parse_rfc3339
from cyclone.engine.runstages import read_run_stage
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.auth import require_tenant, server_state
from cyclone.server.logs.linetimes import LineStamper, stamped, stamped_sync
from cyclone.server.logs.order import log_header, stage_log_order
from cyclone.server.logs.rundata import current_run, resolve_run_ref, run_matches
from cyclone.server.logs.store import InvalidLogName, LogRef, LogStore, RunRef, check_segment
from cyclone.server.state import ServerState
from cyclone.server.stream_auth import bearer_token, token_checker, until_revoked

API_PREFIX = "/apis/v1alpha1"
RUN_PATH = "/projects/{project}/workflows/{workflow}/workflowruns/{run}"
_LOG_STORE_KEY = "log_store"
SETTLE_GRACE_SECONDS = 3.0


def log_store_for(state: ServerState) -> LogStore:
    """The log store of a server (one per process, kept in its state)."""
    store = state.extras.get(_LOG_STORE_KEY)
    if store is None:
        store = LogStore(state.data_dir / "logs")
        state.extras[_LOG_STORE_KEY] = store
    return store


def is_sidecar(container: str) -> bool:
    return container.startswith(("csc-", "wsc-"))


def _run_ref(tenant: str, project: str, workflow: str, run: str) -> RunRef:
    try:
        return RunRef(tenant, project, workflow, run)
    except InvalidLogName as err:
        raise errors.BadRequest(str(err)) from err


def _check_stage(stage: str) -> str:
    try:
        return check_segment(stage, "stage")
    except InvalidLogName as err:
        raise errors.BadRequest(str(err)) from err


def _pick_container(store: LogStore, run_ref: RunRef, stage: str, container: str | None) -> str:
    if container:
        return container
    stored = store.containers(run_ref, stage)
    workload = [c for c in stored if not is_sidecar(c)]
    if workload:
        return workload[0]
    if stored:
        return stored[0]
    raise errors.NotFound(f"no logs for stage {stage!r}")


def _log_ref(run_ref: RunRef, stage: str, container: str) -> LogRef:
    try:
        return LogRef(run_ref, stage, container)
    except InvalidLogName as err:
        raise errors.BadRequest(str(err)) from err


def _stored_logs(store: LogStore, run_ref: RunRef, stage: str | None,
                 container: str | None,
                 run: dict | None = None) -> tuple[list[tuple[str | None, LogRef]], str]:
    """The logs to answer, each with its header (None for a single log), and a file name."""
    if stage:
        _check_stage(stage)
        ref = _log_ref(run_ref, stage, _pick_container(store, run_ref, stage, container))
        if not store.exists(ref):
            raise errors.NotFound(f"no logs for stage {stage!r} container {ref.container!r}")
        return [(None, ref)], f"{run_ref.run}-{stage}-{ref.container}.log"
    logs = [
        (log_header(stage_name, name, not is_sidecar(name)), LogRef(run_ref, stage_name, name))
        for stage_name in stage_log_order(run, store.stages(run_ref))
        for name in store.containers(run_ref, stage_name)
        if not container or name == container
    ]
    if not logs:
        raise errors.NotFound(f"no logs for workflowrun {run_ref.run!r}")
    return logs, f"{run_ref.run}.log"


@dataclass(frozen=True)
class LineView:
    """Which lines to answer and how: with their times, and only those stored since."""

    timestamps: bool = False
    since: datetime | None = None

    @property
    def plain(self) -> bool:
        return not self.timestamps and self.since is None

    def stamper(self, store: LogStore, ref: LogRef) -> LineStamper:
        return LineStamper(store.times_path(ref), timestamps=self.timestamps, since=self.since)


MAX_SINCE_SECONDS = 10**9
"""About 31 years: any log of this server; a larger value would reach before year 1."""


def line_view(
    timestamps: bool = Query(default=False, description="Prefix each line with the RFC 3339 "
                             "time it was stored."),
    since_seconds: int | None = Query(default=None, alias="sinceSeconds", ge=1,
                                      le=MAX_SINCE_SECONDS,
                                      description="Only lines stored in the last N seconds."),
    since_time: str | None = Query(default=None, alias="sinceTime",
                                   description="Only lines stored at or after this RFC 3339 "
                                   "time."),
) -> LineView:
    if since_seconds is not None and since_time is not None:
        raise errors.BadRequest("at most one of sinceSeconds and sinceTime may be given")
    since = None
    if since_seconds is not None:
        since = datetime.now(UTC) - timedelta(seconds=since_seconds)
    elif since_time is not None:
        try:
            since = parse_rfc3339(since_time)
        except ValueError as err:
            raise errors.BadRequest(f"sinceTime {since_time!r} is not an RFC 3339 time") from err
    return LineView(timestamps, since)


def _lines(store: LogStore, ref: LogRef, view: LineView) -> Iterator[bytes]:
    if view.plain:
        return store.iter_bytes(ref)
    return stamped_sync(store.iter_bytes(ref), view.stamper(store, ref))


def _log_body(store: LogStore, logs: list[tuple[str | None, LogRef]],
              view: LineView = LineView()) -> Iterator[bytes]:
    """The logs one after the other under their headers; with `since`, a log none of
    whose lines is left is left out with its header."""
    for header, ref in logs:
        if header is None:
            yield from _lines(store, ref, view)
            continue
        chunks = iter(_lines(store, ref, view))
        first = next(chunks, None)
        if first is None and view.since is not None:
            continue
        yield header.encode()
        last = b"\n"
        for chunk in chain([] if first is None else [first], chunks):
            last = chunk
            yield chunk
        if not last.endswith(b"\n"):
            yield b"\n"


class StageProgress:
    """Whether a stage ended long enough ago that its log will neither appear nor grow.

    A stage that ended (or that a finished run will never start) is given `grace` seconds
    for the collector to catch up before a live stream of it ends without more data.
    """

    def __init__(self, cluster: Cluster | None, run_ref: RunRef, stage: str,
                 grace: float) -> None:
        self._cluster = cluster
        self._run_ref = run_ref
        self._stage = stage
        self._grace = grace
        self._ended_since: float | None = None

    async def _stage_over(self) -> bool:
        assert self._cluster is not None
        try:
            run = await self._cluster.get(kinds.WORKFLOW_RUN, self._run_ref.run,
                                          keys.tenant_namespace(self._run_ref.tenant))
        except errors.NotFound:
            return True
        if not run_matches(run, self._run_ref.project, self._run_ref.workflow) or (
                self._run_ref.uid and run["metadata"].get("uid") != self._run_ref.uid):
            return True
        status = (await read_run_stage(self._cluster, run, self._stage)).get("status") or {}
        stage = ((status.get("stages") or {}).get(self._stage) or {}).get("status") or {}
        overall = (status.get("overall") or {}).get("phase")
        phase = stage.get("phase")
        return phase in TERMINAL_PHASES or (overall in TERMINAL_PHASES and phase != RUNNING)

    async def ended(self) -> bool:
        if self._cluster is None:
            return False
        try:
            over = await self._stage_over()
        except errors.ApiError:
            return False
        now = asyncio.get_running_loop().time()
        if not over:
            self._ended_since = None
            return False
        if self._ended_since is None:
            self._ended_since = now
        return now - self._ended_since >= self._grace


async def _follow_stage(store: LogStore, run_ref: RunRef, stage: str, container: str | None,
                        progress: StageProgress,
                        view: LineView = LineView()) -> AsyncIterator[bytes]:
    if container is None:
        container = await _wait_for_container(store, run_ref, stage, progress)
        if container is None:
            return
    ref = _log_ref(run_ref, stage, container)
    chunks = store.follow(ref, give_up=progress.ended)
    if not view.plain:
        chunks = stamped(chunks, view.stamper(store, ref))
    async for chunk in chunks:
        yield chunk


async def _wait_for_container(store: LogStore, run_ref: RunRef, stage: str,
                              progress: StageProgress) -> str | None:
    """The workload container's name once its log exists; None if it never will."""
    while True:
        stored = store.containers(run_ref, stage)
        workload = [c for c in stored if not is_sidecar(c)]
        if workload:
            return workload[0]
        if await progress.ended():
            return None
        await asyncio.sleep(store.poll_interval)


async def stored_log(state: ServerState, tenant: str, project: str, workflow: str, run: str,
                     stage: str | None, container: str | None,
                     view: LineView = LineView()) -> tuple[Iterator[bytes], str]:
    """The stored log of a run's stage (every stage without one) and its file name.

    NotFound when the run or the log does not exist; the run is the one the path names now.
    """
    store = log_store_for(state)
    run_ref = _run_ref(tenant, project, workflow, run)
    current = None
    if state.cluster is not None:
        current = await current_run(state.cluster, run_ref)
        if current is None:
            raise errors.NotFound(f"workflowrun {run!r} not found")
        run_ref = replace(run_ref, uid=current["metadata"].get("uid") or "")
    logs, filename = _stored_logs(store, run_ref, stage, container, current)
    return _log_body(store, logs, view), filename


async def follow_stage_log(state: ServerState, tenant: str, project: str, workflow: str,
                           run: str, stage: str, container: str | None,
                           view: LineView = LineView(), *,
                           settle_grace: float = SETTLE_GRACE_SECONDS) -> AsyncIterator[bytes]:
    """A stage's log from the start, live until the stage has ended (see `StageProgress`).

    Names are checked and the run resolved before this returns, so a bad request fails
    before any response starts."""
    store = log_store_for(state)
    run_ref = _run_ref(tenant, project, workflow, run)
    _check_stage(stage)
    if container:
        _log_ref(run_ref, stage, container)
    run_ref = await resolve_run_ref(state.cluster, run_ref)
    progress = StageProgress(state.cluster, run_ref, stage, settle_grace)
    return _follow_stage(store, run_ref, stage, container, progress, view)


async def _sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield b"data: " + line.rstrip(b"\r") + b"\n\n"
    if pending:
        yield b"data: " + pending + b"\n\n"
    yield b"event: end\ndata: \n\n"


def _wants_sse(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def build_logs_router(prefix: str = API_PREFIX, *,
                      settle_grace: float = SETTLE_GRACE_SECONDS) -> APIRouter:
    """Routes over the log store of `request.app.state.cyclone` (see `log_store_for`).

    `prefix` is where the API lives; pass "" when the app mounts the router under it.
    """
    router = APIRouter(prefix=prefix, tags=["logs"])

    @router.get(f"{RUN_PATH}/logs", response_class=PlainTextResponse)
    async def get_logs(
        request: Request,
        project: str,
        workflow: str,
        run: str,
        stage: str | None = Query(default=None),
        container: str | None = Query(default=None),
        download: bool = Query(default=False),
        tenant: str = Depends(require_tenant),
        view: LineView = Depends(line_view),
    ) -> StreamingResponse:
        body, filename = await stored_log(server_state(request), tenant, project, workflow,
                                          run, stage, container, view)
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if download else {}
        return StreamingResponse(body, media_type="text/plain; charset=utf-8", headers=headers)

    async def stream_response(request: Request, project: str, workflow: str, run: str,
                              stage: str, container: str | None, tenant: str,
                              sse: bool, view: LineView) -> StreamingResponse:
        chunks = until_revoked(
            await follow_stage_log(server_state(request), tenant, project, workflow, run,
                                   stage, container, view, settle_grace=settle_grace),
            token_checker(request, bearer_token(request), tenant))
        if sse:
            return StreamingResponse(
                _sse_events(chunks), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")

    @router.get(f"{RUN_PATH}/logstream")
    async def stream_logs(
        request: Request, project: str, workflow: str, run: str,
        stage: str = Query(), container: str | None = Query(default=None),
        tenant: str = Depends(require_tenant), view: LineView = Depends(line_view),
    ) -> StreamingResponse:
        return await stream_response(request, project, workflow, run, stage, container,
                                     tenant, _wants_sse(request), view)

    @router.get(f"{RUN_PATH}/logstream/sse")
    async def stream_logs_sse(
        request: Request, project: str, workflow: str, run: str,
        stage: str = Query(), container: str | None = Query(default=None),
        tenant: str = Depends(require_tenant), view: LineView = Depends(line_view),
    ) -> StreamingResponse:
        return await stream_response(request, project, workflow, run, stage, container,
                                     tenant, True, view)

    @router.websocket(f"{RUN_PATH}/logstream")
    async def stream_logs_ws(websocket: WebSocket, project: str, workflow: str, run: str,
                             stage: str, container: str | None = None) -> None:
        state: ServerState = websocket.app.state.cyclone
        try:
            tenant = await _websocket_tenant(websocket, state)
            run_ref = _run_ref(tenant, project, workflow, run)
            _check_stage(stage)
            if container:
                _log_ref(run_ref, stage, container)
            store = log_store_for(state)
            view = _websocket_view(websocket)
            run_ref = await resolve_run_ref(state.cluster, run_ref)
        except errors.ApiError as err:
            await websocket.close(code=1008, reason=err.message[:120])
            return
        await websocket.accept()
        progress = StageProgress(state.cluster, run_ref, stage, settle_grace)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            async for chunk in _follow_stage(store, run_ref, stage, container, progress, view):
                text = decoder.decode(chunk)
                if text:
                    await websocket.send_text(text)
            rest = decoder.decode(b"", final=True)
            if rest:
                await websocket.send_text(rest)
        except WebSocketDisconnect:
            return
        await websocket.close(code=1000)

    return router


def _websocket_view(websocket: WebSocket) -> LineView:
    query = websocket.query_params
    seconds = query.get("sinceSeconds")
    if seconds is not None and not (seconds.isascii() and seconds.isdigit()
                                    and 1 <= int(seconds) <= MAX_SINCE_SECONDS):
        raise errors.BadRequest(
            f"sinceSeconds must be a number of seconds from 1 to {MAX_SINCE_SECONDS}")
    return line_view(query.get("timestamps", "").lower() in ("true", "1"),
                     int(seconds) if seconds is not None else None, query.get("sinceTime"))


async def _websocket_tenant(websocket: WebSocket, state: ServerState) -> str:
    """The tenant of a WebSocket caller: bearer token from the header or `?token=`."""
    authorization = websocket.headers.get("authorization")
    token = websocket.query_params.get("token")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    if not token:
        raise errors.Unauthorized("missing bearer token")
    principal = await state.auth.authenticate(token)
    x_tenant = websocket.headers.get("x-tenant") or websocket.query_params.get("tenant")
    return await require_tenant(principal, x_tenant)
