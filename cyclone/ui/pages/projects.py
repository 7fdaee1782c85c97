"""`/projects` (the tenant's projects) and `/projects/{p}` (its workflows, stages, resources
and triggers)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from cyclone.api import keys
from cyclone.server import catalog
from cyclone.server.crud import list_objects
from cyclone.server.scopes import get_owned
from cyclone.ui import workflow_view as view
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.indexed_runs import newest_first, summaries
from cyclone.ui.run_index import RunSummary
from cyclone.ui.templating import render

router = ui_router()


def _by(runs: Iterable[RunSummary], key: Callable[[RunSummary], str]
        ) -> dict[str, list[RunSummary]]:
    """Summaries grouped by `key`, each group newest first."""
    groups: dict[str, list[RunSummary]] = {}
    for run in newest_first(list(runs)):
        groups.setdefault(key(run), []).append(run)
    return groups


def project_rows(projects: list[dict], workflows: list[dict], runs: Iterable[RunSummary]
                 ) -> list[dict]:
    """One row per project: its description, number of workflows and its last run."""
    workflows_of = view.group_by_label(workflows, keys.LABEL_PROJECT)
    runs_of = _by(runs, lambda r: r.project)
    rows = []
    for project in sorted(projects, key=lambda p: p["metadata"]["name"]):
        name = project["metadata"]["name"]
        last = (runs_of.get(name) or [None])[0]
        rows.append({"name": name, "description": view.description(project),
                     "workflows": len(workflows_of.get(name, [])), "last_run": last,
                     "created": view.created(project)})
    return rows


def workflow_rows(workflows: list[dict], runs: Iterable[RunSummary], triggers: list[dict],
                  now: datetime) -> list[dict]:
    """One row per workflow: last run, success of the last 10, next cron fire."""
    runs_of = _by(runs, lambda r: r.workflow)
    triggers_of = view.group_by_label(triggers, keys.LABEL_WORKFLOW)
    rows = []
    for workflow in sorted(workflows, key=lambda w: w["metadata"]["name"]):
        name = workflow["metadata"]["name"]
        ordered = runs_of.get(name, [])
        fires = [f.times[0] for t in triggers_of.get(name, [])
                 for f in [view.next_fires(t, now, 1)] if f.times]
        rows.append({"name": name, "description": view.description(workflow),
                     "stages": len((workflow.get("spec") or {}).get("stages") or []),
                     "last_run": ordered[0] if ordered else None,
                     "success": view.success_of_last(r.phase for r in ordered),
                     "next_fire": min(fires).strftime("%Y-%m-%dT%H:%M:%SZ") if fires else ""})
    return rows


def stage_users(workflows: list[dict]) -> dict[str, list[str]]:
    """The workflows naming each stage, by name."""
    users: dict[str, list[str]] = {}
    for workflow in sorted(workflows, key=lambda w: w["metadata"]["name"]):
        for item in (workflow.get("spec") or {}).get("stages") or []:
            if isinstance(item, dict) and item.get("name"):
                users.setdefault(str(item["name"]), []).append(workflow["metadata"]["name"])
    return users


@router.get("/projects", response_class=HTMLResponse)
async def projects_page(request: Request, session: UiSession = Depends(ui_session)
                        ) -> HTMLResponse:
    scope = await session.scope()
    projects = await list_objects(catalog.PROJECTS, scope)
    workflows = await list_objects(catalog.WORKFLOWS, scope)
    rows = project_rows(projects, workflows, await summaries(scope, session.state))
    return render(request, "projects.html", {"rows": rows})


@router.get("/projects/{project}", response_class=HTMLResponse)
async def project_page(project: str, request: Request,
                       session: UiSession = Depends(ui_session)) -> HTMLResponse:
    scope = await session.project_scope(project)
    workflows = await list_objects(catalog.WORKFLOWS, scope)
    triggers = await list_objects(catalog.TRIGGERS, scope)
    stages = sorted(await list_objects(catalog.STAGES, scope),
                    key=lambda s: s["metadata"]["name"])
    resources = sorted(await list_objects(catalog.RESOURCES, scope),
                       key=lambda r: r["metadata"]["name"])
    now = datetime.now(UTC)
    rows = workflow_rows(workflows, await summaries(scope, session.state), triggers, now)
    trigger_rows = [{"trigger": t, "workflow": (t["metadata"].get("labels") or {}).get(
        keys.LABEL_WORKFLOW, ""), "fires": view.next_fires(t, now, 1)}
        for t in sorted(triggers, key=lambda t: t["metadata"]["name"])]
    stored = await get_owned(scope, catalog.PROJECTS.kind, project, "project")
    return render(request, "project.html", {
        "project": project, "description": view.description(stored),
        "rows": rows, "stages": stages, "resources": resources, "triggers": trigger_rows,
        "stage_users": stage_users(workflows)})
