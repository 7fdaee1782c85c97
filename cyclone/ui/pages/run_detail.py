"""The run detail page: header, actions, the live DAG, the timeline and the stage table.

The page is rendered whole from the run and its workflow; `static/js/run.js` then follows
the run's stream (`/ui/streams/runs/...`) and changes only what changed. With `HX-Request`
the page answers a fragment: `?view=header` (header and actions, refreshed when the run's
phase changes) or `?view=timeline`.

The actions are CSRF-checked POSTs that call the same functions as the REST API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cyclone.engine.core.runstart import RERUN, RETRY
from cyclone.kube import errors, kinds
from cyclone.server import runs
from cyclone.server.scopes import Scope, get_owned, workflow_scope
from cyclone.server.state import ServerState
from cyclone.ui import dag_view, indexed_runs, insights
from cyclone.ui.deps import UiSession, ui_router, ui_session, web_starter
from cyclone.ui.durations import run_end, run_seconds
from cyclone.ui.layout import DagLayout, layout_dag
from cyclone.ui.run_summary import (
    ACTIONS,
    actions_for,
    commit_of,
    parameters_of,
    run_phase,
    stage_rows,
    started_by,
    trigger_of,
    variables_of,
)
from cyclone.ui.templating import render
from cyclone.ui.timeline import build_timeline
from cyclone.ui.urls import run_stream_url, run_url, stage_url, workflow_url

router = ui_router()
RUN_PATH = "/projects/{project}/workflows/{workflow}/runs/{run}"
HISTORY_LIMIT = 10
"""Successful runs of the workflow the regressions are measured against (newest first)."""
VIEWS = ("dag", "timeline")
RUN_CHANGED = "cyclone:run-changed"
NOTICES = {"stop": "Stop requested.", "pause": "Paused: no new stage starts.",
           "resume": "Resumed."}
TABLE_INLINE_LIMIT = 300
"""Stages up to which the stage table is part of the page; a larger table comes right
after, so the graph is drawn and working sooner."""


@lru_cache(maxsize=32)
def cached_layout(names: tuple[str, ...], edges: tuple[tuple[str, str], ...]) -> DagLayout:
    """The layout of a graph, kept for the next request: a run page is opened again and
    again (reloads, retries, the header's refreshes) for the same workflow, and a large
    graph's layout costs more than the rest of the page."""
    return layout_dag(names, edges)


def run_layout(workflow: dict, run: dict) -> DagLayout:
    """The workflow's DAG, plus the stages the run knows that the workflow no longer
    lists."""
    names, edges = dag_view.workflow_graph(workflow)
    known = set(names)
    extra = sorted(set((run.get("status") or {}).get("stages") or {}) - known)
    return cached_layout(tuple(names + extra), tuple(edges))


def stage_order(layout: DagLayout, run: dict) -> list[str]:
    """The stages in the DAG's reading order (column by column, top to bottom), then any the
    run knows that the workflow no longer lists."""
    placed = sorted(layout.nodes.values(), key=lambda n: (n.layer, n.order))
    names = [n.name for n in placed]
    extra = sorted(set((run.get("status") or {}).get("stages") or {}) - set(names))
    return names + extra


async def recent_green_runs(scope: Scope, run: dict, state: ServerState) -> list[dict]:
    """The baseline of the run's regressions: the workflow's latest successful runs created
    before it, found in the run index (no listing of every run of the workflow)."""
    return await indexed_runs.recent_green_runs(scope, run, state, HISTORY_LIMIT)


def header_context(project: str, workflow: str, run: dict) -> dict:
    name = run["metadata"]["name"]
    overall = (run.get("status") or {}).get("overall") or {}
    finished = run_end(run)
    retry_of = str((run.get("spec") or {}).get("retryOf") or "")
    return {
        "project": project, "workflow": workflow, "name": name, "run": run,
        "phase": run_phase(run), "overall": overall,
        "trigger": trigger_of(run), "started_by": started_by(run),
        "started": overall.get("startTime"), "finished": finished,
        "duration": run_seconds(run),
        "commit": commit_of(run), "actions": actions_for(run),
        "run_url": run_url(project, workflow, name),
        "workflow_url": workflow_url(project, workflow),
        "retry_of": retry_of,
        "retry_url": run_url(project, workflow, retry_of) if retry_of else "",
    }


def page_context(project: str, workflow: str, run: dict, wf: dict,
                 history: list[dict], *, view: str = "dag", stage: str | None = None,
                 full_table: bool = False, now: datetime | None = None) -> dict:
    """Everything the page's template shows; pure, so templates render in tests without a
    server. The stage table of a run with more than `TABLE_INLINE_LIMIT` stages is left
    out (the page loads it right after it is shown) unless `full_table`."""
    now = now or datetime.now(UTC)
    layout = run_layout(wf, run)
    order = stage_order(layout, run)
    info = dag_view.run_node_info(run)
    context = header_context(project, workflow, run)
    context.update({
        "layout": layout, "info": info, "order": order, "view": view,
        "rows": stage_rows(order, info),
        "table_later": len(order) > TABLE_INLINE_LIMIT and not full_table,
        "critical": insights.critical_path(run, wf, now=now),
        "flagged": insights.regressions(run, history, now=now),
        "timeline": build_timeline(run, order, now) if view == "timeline" else None,
        "parameters": parameters_of(run), "variables": variables_of(run),
        "stage": stage if stage in layout.nodes else None,
        "stage_href": lambda s: stage_url(project, workflow, run["metadata"]["name"], s),
        "stream_url": run_stream_url(project, workflow, run["metadata"]["name"]),
        "failed": context["phase"] == "Failed",
    })
    return context


@router.get(RUN_PATH, response_class=HTMLResponse)
async def run_page(request: Request, project: str, workflow: str, run: str,
                   view: str = "dag", stage: str | None = None, part: str | None = None,
                   table: str | None = None,
                   session: UiSession = Depends(ui_session)) -> HTMLResponse:
    owner = await session.project_scope(project)
    wf = await get_owned(owner, kinds.WORKFLOW, workflow, "workflow")
    scope = await workflow_scope(workflow, owner)
    obj = await get_owned(scope, kinds.WORKFLOW_RUN, run, "workflowrun")
    view = view if view in VIEWS else "dag"
    fragment = part if request.headers.get("HX-Request") else None
    if fragment == "header":
        return render(request, "run/header.html", header_context(project, workflow, obj))
    if fragment == "timeline":
        order = stage_order(run_layout(wf, obj), obj)
        return render(request, "run/timeline.html", {"timeline": build_timeline(obj, order)})
    history = await recent_green_runs(scope, obj, session.state)
    context = page_context(project, workflow, obj, wf, history, view=view, stage=stage,
                           full_table=table == "all")
    if fragment in ("stages", "insights"):
        return render(request, f"run/{fragment}.html", context)
    return render(request, "run_detail.html", context)


@router.post(RUN_PATH + "/{action}")
async def run_action(request: Request, project: str, workflow: str, run: str, action: str,
                     session: UiSession = Depends(ui_session)) -> Response:
    """Stop, pause, resume, retry, rerun or delete the run, as the REST API does. An htmx
    request gets a notice and the `RUN_CHANGED` event (the page then asks for its header,
    so a late answer never puts back an older header than the stream's), or is sent to the
    new run's page; a plain form gets a redirect."""
    if action not in ACTIONS:
        raise errors.NotFound(f"no run action {action!r}")
    scope = await session.workflow_scope(project, workflow)
    target: str | None = None
    if action == "stop":
        await runs.stop_run(run, scope, force=False)
    elif action == "pause":
        await runs.pause_run(run, scope)
    elif action == "resume":
        await runs.resume_run(run, scope)
    elif action == "retry":
        created = await runs.repeat_run(scope, run, RETRY, web_starter(session))
        target = run_url(project, workflow, created["metadata"]["name"])
    elif action == "rerun":
        created = await runs.repeat_run(scope, run, RERUN, web_starter(session))
        target = run_url(project, workflow, created["metadata"]["name"])
    else:
        await runs.delete_run(run, scope, session.state)
        target = workflow_url(project, workflow)
    if not request.headers.get("HX-Request"):
        return RedirectResponse(target or run_url(project, workflow, run), status_code=303)
    if target is not None:
        return Response(status_code=204, headers={"HX-Redirect": target})
    return render(request, "run/notice.html", {"notice": NOTICES[action]},
                  headers={"HX-Trigger": RUN_CHANGED})
