"""The global runs list: filters kept in the URL, server-side paging by cursor, and live rows
and a "new runs" notice over server-sent events from the run index."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from datetime import date
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from cyclone.server.run_stream import HEARTBEAT_QUERY
from cyclone.server.stream_auth import AllowedEvery, StillAllowed, token_checker
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.run_index import (
    TRIGGER_KINDS,
    RunFilter,
    RunIndex,
    RunSummary,
    decode_cursor,
    run_index,
)
from cyclone.ui.run_summary import PAUSED
from cyclone.ui.templating import PHASES, environment, render

router = ui_router()

PAGE_SIZE = 50
TRIGGERS = TRIGGER_KINDS
FILTER_PHASES = (*PHASES, PAUSED)
KEEP_ALIVE_SECONDS = 15.0
FILTER_FIELDS = ("phase", "project", "workflow", "trigger", "from", "to", "q")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class IndexUnavailable(Exception):
    """The run index has not finished its first list in time."""


def parse_filters(params: Mapping[str, str]) -> tuple[RunFilter, dict[str, str], list[str]]:
    """The filter a query string asks for, the values to keep in the URL, and a one-line
    message for each value that is not understood (that value is then ignored)."""
    kept: dict[str, str] = {}
    problems: list[str] = []
    for name in FILTER_FIELDS:
        value = (params.get(name) or "").strip()[:253]
        if value:
            kept[name] = value
    phase = kept.get("phase", "")
    if phase and phase not in FILTER_PHASES:
        problems.append(f"phase {phase!r} is not one of {', '.join(FILTER_PHASES)}")
        phase = ""
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        days[name] = None
        if name in kept:
            try:
                days[name] = date.fromisoformat(kept[name])
            except ValueError:
                problems.append(f"{name} {kept[name]!r} is not a date (YYYY-MM-DD)")
    if days["from"] and days["to"] and days["from"] > days["to"]:
        problems.append("from is after to: no run can match")
    where = RunFilter(phase=phase, project=kept.get("project", ""),
                      workflow=kept.get("workflow", ""), trigger=kept.get("trigger", ""),
                      since=days["from"], until=days["to"], search=kept.get("q", ""))
    return where, kept, problems


def list_url(kept: Mapping[str, str], **extra: str) -> str:
    query = urlencode({**kept, **extra})
    return f"/runs?{query}" if query else "/runs"


async def ready_index(session: UiSession) -> tuple[RunIndex, str]:
    """The server's run index (started on first use) and the session tenant's namespace."""
    scope = await session.scope()
    index = run_index(session.state)
    try:
        await index.ready()
    except TimeoutError:
        raise IndexUnavailable() from None
    return index, scope.namespace


def row_html(run: RunSummary) -> str:
    return environment().get_template("runs_list_row.html").render(run=run)


@router.get("/runs", response_class=HTMLResponse)
async def runs_list(request: Request, session: UiSession = Depends(ui_session)
                    ) -> HTMLResponse:
    params = request.query_params
    where, kept, problems = parse_filters(params)
    try:
        index, namespace = await ready_index(session)
    except IndexUnavailable:
        return render(request, "runs_list.html", {
            "runs": [], "kept": kept, "problems": [
                "the runs are still being loaded: reload the page in a moment"],
            "projects": [], "workflows": [], "triggers": TRIGGERS, "phases": FILTER_PHASES,
            "page": None,
            "stream_url": None, "older_url": None, "newer_url": None}, status_code=503)
    older = params.get("older") or None
    newer = params.get("newer") or None
    if (older and decode_cursor(older) is None) or (newer and decode_cursor(newer) is None):
        problems.append("the page link is not valid: showing the newest runs")
        older = newer = None
    page = index.page(namespace, where, limit=PAGE_SIZE, older=older, newer=newer)
    top = index.page(namespace, where, limit=1).runs
    stream_query = {**kept, "top": f"{top[0].created}|{top[0].name}"} if top else dict(kept)
    context = {
        "runs": page.runs, "kept": kept, "problems": problems, "page": page,
        "projects": index.projects(namespace),
        "workflows": sorted({w for _, w in index.workflows(namespace, kept.get("project", ""))}),
        "triggers": TRIGGERS, "phases": FILTER_PHASES,
        "older_url": list_url(kept, older=page.older) if page.older else None,
        "newer_url": list_url(kept, newer=page.newer) if page.newer else None,
        "first_url": list_url(kept) if page.newer else None,
        "stream_url": "/ui/streams/runs-list?" + urlencode(stream_query),
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "runs-table":
        return render(request, "runs_list_table.html", context)
    return render(request, "runs_list.html", context)


def sse(event: str, html: str) -> str:
    data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{data}\n"


def new_runs_html(count: int, url: str, *, missed: bool = False) -> str:
    return environment().get_template("runs_list_new.html").render(count=count, url=url,
                                                                    missed=missed)


def is_new_run(kind: str, run: RunSummary, top: tuple[str, str] | None) -> bool:
    """Whether a change is a run created since the page was drawn: one added after the
    page's newest run, or in the same second (creation times have whole seconds, so a run
    of that second may sort before it by name) unless it is the page's newest itself."""
    if kind == "DELETED":
        return False
    if top is None or run.order > top:
        return True
    return kind == "ADDED" and run.created == top[0] and run.name != top[1]


async def list_events(index: RunIndex, namespace: str, where: RunFilter,
                      top: tuple[str, str] | None, refresh_url: str, *,
                      keep_alive: float = KEEP_ALIVE_SECONDS,
                      still_allowed: StillAllowed | None = None) -> AsyncIterator[str]:
    """Row replacements (`event: run-NAME`, the row's HTML, or nothing once deleted) for
    runs the filter shows whatever their phase, and `event: new-runs` with the notice of how
    many matching runs were created after `top` since the stream began (or, once changes
    came faster than the stream sent them, that the list should be reloaded). It ends once
    `still_allowed` says no, asked at every keep-alive interval."""
    rows = dataclasses.replace(where, phase="")
    fresh: set[str] = set()
    subscription = index.subscribe(namespace)
    allowed = AllowedEvery(still_allowed, keep_alive)
    try:
        yield ": connected\n\n"
        while True:
            try:
                kind, run = await asyncio.wait_for(subscription.get(), keep_alive)
            except TimeoutError:
                if not await allowed(due=True):
                    return
                yield ": keep-alive\n\n"
                continue
            if not await allowed():
                return
            if subscription.overflowed:
                subscription.overflowed = False
                yield sse("new-runs", new_runs_html(len(fresh), refresh_url, missed=True))
            if not rows.matches(run):
                continue
            yield sse(f"run-{run.name}", "" if kind == "DELETED" else row_html(run))
            if is_new_run(kind, run, top) and where.matches(run) and run.name not in fresh:
                fresh.add(run.name)
                yield sse("new-runs", new_runs_html(len(fresh), refresh_url))
    finally:
        subscription.close()


@router.get("/ui/streams/runs-list")
async def runs_list_stream(request: Request, session: UiSession = Depends(ui_session),
                           heartbeat: float = HEARTBEAT_QUERY) -> Response:
    """The runs list's live updates, for the session's tenant only, until the session's
    token is revoked."""
    where, kept, _ = parse_filters(request.query_params)
    try:
        index, namespace = await ready_index(session)
    except IndexUnavailable:
        return Response("the runs are still being loaded", status_code=503,
                        headers={"Retry-After": "5"})
    raw_top = request.query_params.get("top", "")
    created, sep, name = raw_top.partition("|")
    top = (created, name) if sep else None
    events = list_events(index, namespace, where, top, list_url(kept), keep_alive=heartbeat,
                         still_allowed=token_checker(request, session.token, session.tenant))
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
