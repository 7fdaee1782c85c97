"""The overview page (run trends, success rate, running now, recent failures, storage), the stats
page, the tenant switcher and the Ctrl-K palette.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.server.run_stream import HEARTBEAT_QUERY
from cyclone.server.stats import run_stats
from cyclone.server.storage import read_usage
from cyclone.server.stream_auth import AllowedEvery, StillAllowed, token_checker
from cyclone.server.tenant_records import tenant_from_namespace
from cyclone.ui.charts import figures, runs_per_day, stacked_bars
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.pages.browse import (
    KEEP_ALIVE_SECONDS,
    SSE_HEADERS,
    IndexUnavailable,
    ready_index,
    sse,
)
from cyclone.ui.run_index import RunFilter, RunIndex, RunSummary
from cyclone.ui.run_summary import PAUSED
from cyclone.ui.templating import environment, render

router = ui_router()

TREND_DAYS = 14
RECENT_FAILURES = 8
RUNNING_LIMIT = 25
PALETTE_LIMIT = 8
PAGES = (("Overview", "/"), ("Runs", "/runs"), ("Projects", "/projects"),
         ("Apply YAML", "/apply"), ("Stats", "/stats"), ("Templates", "/templates"),
         ("Integrations", "/integrations"), ("Clusters", "/clusters"),
         ("Resource types", "/resourcetypes"), ("API docs", "/docs"))


def running_now(index: RunIndex, namespace: str) -> list[RunSummary]:
    runs = [run for phase in ("Running", PAUSED, "Waiting")
            for run in index.newest(namespace, RunFilter(phase=phase), RUNNING_LIMIT)]
    return sorted(runs, key=lambda r: r.order, reverse=True)[:RUNNING_LIMIT]


async def storage_usage(session: UiSession) -> dict | None:
    """The tenant PVC's last reported usage with its percentage, or None before any report."""
    try:
        usage = await read_usage(tenant=session.tenant, state=session.state)
    except errors.NotFound:
        return None
    total, used = usage.get("total") or 0, usage.get("used") or 0
    return {**usage, "percent": round(100 * used / total) if total else None}


def recent(runs: Iterable[RunSummary], days: int, today: datetime) -> list[RunSummary]:
    floor = (today - timedelta(days=days - 1)).date().isoformat()
    return [r for r in runs if r.created >= floor]


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, session: UiSession = Depends(ui_session)) -> HTMLResponse:
    try:
        index, namespace = await ready_index(session)
    except IndexUnavailable:
        return render(request, "overview.html", {"loading": True}, status_code=503)
    now = datetime.now(UTC)
    fortnight = recent(index.runs(namespace), TREND_DAYS, now)
    return render(request, "overview.html", {
        "loading": False,
        "chart": stacked_bars(runs_per_day(fortnight, now.date(), TREND_DAYS), width=1200,
                              height=200),
        "figures": figures(fortnight),
        "failures": index.newest(namespace, RunFilter(phase="Failed"), RECENT_FAILURES),
        "running": running_now(index, namespace),
        "storage": await storage_usage(session),
        "trend_days": TREND_DAYS,
    })


def running_html(runs: list[RunSummary]) -> str:
    return environment().get_template("runs_list_running.html").render(running=runs)


async def running_events(index: RunIndex, namespace: str, *,
                         keep_alive: float = KEEP_ALIVE_SECONDS,
                         still_allowed: StillAllowed | None = None) -> AsyncIterator[str]:
    """`event: running` with the "running now" list whenever a run of `namespace` changes
    (changes arriving together send one list). It ends once `still_allowed` says no, asked
    at every keep-alive interval."""
    subscription = index.subscribe(namespace)
    allowed = AllowedEvery(still_allowed, keep_alive)
    try:
        yield ": connected\n\n"
        while True:
            try:
                await asyncio.wait_for(subscription.get(), keep_alive)
            except TimeoutError:
                if not await allowed(due=True):
                    return
                yield ": keep-alive\n\n"
                continue
            if not await allowed():
                return
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            yield sse("running", running_html(running_now(index, namespace)))
    finally:
        subscription.close()


@router.get("/ui/streams/overview")
async def overview_stream(request: Request, session: UiSession = Depends(ui_session),
                          heartbeat: float = HEARTBEAT_QUERY) -> Response:
    """The overview's "running now" list, live, until the session's token is revoked."""
    try:
        index, namespace = await ready_index(session)
    except IndexUnavailable:
        return Response("the runs are still being loaded", status_code=503,
                        headers={"Retry-After": "5"})
    events = running_events(index, namespace, keep_alive=heartbeat,
                            still_allowed=token_checker(request, session.token, session.tenant))
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


def _as_run(summary: RunSummary) -> dict:
    """The fields of a run `run_stats` reads, from its summary (a paused run is a running
    run to the engine's phases)."""
    phase = "Running" if summary.phase == PAUSED else summary.phase
    return {"metadata": {"creationTimestamp": summary.created},
            "status": {"overall": {"phase": phase, "startTime": summary.started
                                   or None},
                       "completionTime": summary.finished or None}}


def stats_rows(runs: list[RunSummary]) -> tuple[list[dict], list[dict]]:
    """Figures per project and per workflow, busiest first."""
    by_project: dict[str, list[RunSummary]] = {}
    by_workflow: dict[tuple[str, str], list[RunSummary]] = {}
    for run in runs:
        by_project.setdefault(run.project, []).append(run)
        by_workflow.setdefault((run.project, run.workflow), []).append(run)
    projects = [{"project": p, "figures": figures(rs), "last": max(rs, key=lambda r: r.order)}
                for p, rs in by_project.items()]
    workflows = [{"project": p, "workflow": w, "figures": figures(rs),
                  "last": max(rs, key=lambda r: r.order)}
                 for (p, w), rs in by_workflow.items()]
    projects.sort(key=lambda row: (-row["figures"].total, row["project"]))
    workflows.sort(key=lambda row: (-row["figures"].total, row["project"], row["workflow"]))
    return projects, workflows


@router.get("/stats", response_class=HTMLResponse)
async def stats(request: Request, days: str = Query(str(TREND_DAYS), max_length=20),
                session: UiSession = Depends(ui_session)) -> HTMLResponse:
    problems = []
    window_days = int(days) if days.isdigit() and 1 <= int(days) <= 366 else None
    if window_days is None:
        problems.append(f"days {days!r} is not a number of days from 1 to 366")
        window_days = TREND_DAYS
    try:
        index, namespace = await ready_index(session)
    except IndexUnavailable:
        return render(request, "stats.html", {"loading": True}, status_code=503)
    now = datetime.now(UTC)
    window = recent(index.runs(namespace), window_days, now)
    projects, workflows = stats_rows(window)
    totals = run_stats([_as_run(r) for r in window],
                       (now - timedelta(days=window_days - 1)).date(), now.date())
    return render(request, "stats.html", {
        "loading": False, "days": window_days, "problems": problems, "projects": projects,
        "workflows": workflows, "totals": totals, "figures": figures(window),
        "chart": stacked_bars(runs_per_day(window, now.date(), window_days), width=1200,
                              height=200),
    })


def _rank(name: str, needle: str) -> int | None:
    """0 for a prefix match, 1 for a substring match, None otherwise (case-insensitive)."""
    if not needle:
        return 1
    at = name.lower().find(needle)
    return None if at < 0 else (0 if at == 0 else 1)


def palette_items(needle: str, projects: list[str], workflows: list[tuple[str, str]],
                  runs: list[RunSummary]) -> list[dict]:
    """The palette's entries for `needle`: workflows, projects, runs, then pages."""
    needle = needle.strip().lower()
    items: list[tuple[int, int, str, dict]] = []
    for p, w in workflows:
        rank = _rank(w, needle)
        if rank is not None:
            items.append((rank, 0, w, {"kind": "workflow", "label": w, "detail": p,
                                       "href": f"/projects/{p}/workflows/{w}"}))
    for p in projects:
        rank = _rank(p, needle)
        if rank is not None:
            items.append((rank, 1, p, {"kind": "project", "label": p, "detail": "",
                                       "href": f"/projects/{p}"}))
    for run in runs:
        rank = _rank(run.name, needle)
        if rank is not None:
            items.append((rank, 2, "", {
                "kind": "run", "label": run.name, "detail": f"{run.project}/{run.workflow}",
                "phase": run.phase,
                "href": f"/projects/{run.project}/workflows/{run.workflow}/runs/{run.name}"}))
    for label, href in PAGES:
        rank = _rank(label, needle)
        if rank is not None:
            items.append((rank + 1, 3, label, {"kind": "page", "label": label, "detail": "",
                                               "href": href}))
    items.sort(key=lambda item: item[:2])
    return [item for *_, item in items][:3 * PALETTE_LIMIT]


@router.get("/ui/palette", response_class=HTMLResponse)
async def palette(request: Request, q: str = Query("", max_length=200),
                  session: UiSession = Depends(ui_session)) -> HTMLResponse:
    """`<li>` entries for the Ctrl-K dialog: the session tenant's projects, workflows and
    recent runs, and the pages."""
    scope = await session.scope()
    listed_projects = await session.state.cluster.list(kinds.PROJECT, scope.namespace)
    listed_workflows = await session.state.cluster.list(kinds.WORKFLOW, scope.namespace)
    projects = sorted(p["metadata"]["name"] for p in listed_projects.items)[:500]
    workflows = sorted(
        ((w["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT, ""), w["metadata"]["name"])
        for w in listed_workflows.items)
    runs: list[RunSummary] = []
    try:
        index, namespace = await ready_index(session)
        runs = index.newest(namespace, RunFilter(search=q.strip()), PALETTE_LIMIT)
    except IndexUnavailable:
        pass
    items = palette_items(q, projects[:500], [w for w in workflows if w[0]][:2000], runs)
    return render(request, "palette_items.html", {"items": items, "q": q})


async def tenant_names(session: UiSession) -> list[str]:
    """The tenants the session may act on: every tenant for the admin, else its own."""
    if not session.admin:
        return [session.tenant]
    listed = await session.state.cluster.list(kinds.NAMESPACE)
    names = {t["metadata"]["name"] for ns in listed.items
             if not ns["metadata"].get("deletionTimestamp")
             for t in [tenant_from_namespace(ns)] if t}
    return sorted(names | {session.tenant})


@router.get("/ui/tenant-switcher", response_class=HTMLResponse)
async def tenant_switcher(request: Request, session: UiSession = Depends(ui_session)
                          ) -> HTMLResponse:
    """The admin's tenant picker in the top bar."""
    return render(request, "components/tenant_switcher.html",
                  {"tenants": await tenant_names(session),
                   "next": request.headers.get("HX-Current-URL", "/")})
