"""Projects, the workflow page (DAG, run history, triggers, YAML, starting a run) and
applying YAML.

The project pages live in `projects`, the /apply page in `apply`; this module's `router`
includes them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.server import catalog, scmrepos
from cyclone.server.crud import list_objects
from cyclone.server.integration_records import list_integration_secrets
from cyclone.server.listing import ListQuery
from cyclone.server.objects import ObjectBody
from cyclone.server.runs import create_run
from cyclone.server.scopes import Scope, get_owned
from cyclone.ui import workflow_view as view
from cyclone.ui.dag_view import workflow_graph
from cyclone.ui.deps import UiSession, ui_router, ui_session, web_starter
from cyclone.ui.indexed_runs import newest_runs
from cyclone.ui.pages import apply, projects
from cyclone.ui.templating import render
from cyclone.ui.urls import run_url

router = ui_router()
router.include_router(projects.router)
router.include_router(apply.router)
_WORKFLOW = "/projects/{project}/workflows/{workflow}"


async def _scm_integration(session: UiSession, scope: Scope) -> str:
    """The SCM integration a Git resource of the project is read with: the project's
    default SCM integration, else the tenant's first."""
    project = await get_owned(scope, catalog.PROJECTS.kind, scope.project or "", "project")
    for item in (project.get("spec") or {}).get("integrations") or []:
        if isinstance(item, dict) and item.get("type") == "SCM" and item.get("name"):
            return str(item["name"])
    secrets = await list_integration_secrets(session.state.cluster, session.tenant, "SCM")
    names = sorted(s["metadata"]["name"] for s in secrets)
    return names[0] if names else ""


async def stages_of(scope: Scope, workflow: dict) -> dict[str, dict]:
    """The Stage objects the workflow names, by name (looked up in the tenant, as the engine
    does)."""
    wanted = set(workflow_graph(workflow)[0])
    listed = await scope.cluster.list(kinds.STAGE, scope.namespace)
    return {s["metadata"]["name"]: s for s in listed.items if s["metadata"]["name"] in wanted}


async def _run_form(session: UiSession, project_scope: Scope, workflow: dict,
                    stages: dict[str, dict]) -> view.RunForm:
    resources = {r["metadata"]["name"]: r
                 for r in await list_objects(catalog.RESOURCES, project_scope)}
    form = view.run_form(workflow, stages, resources)
    if form.git:
        form = view.run_form(workflow, stages, resources,
                             await _scm_integration(session, project_scope))
    return form


async def _workflow(session: UiSession, project: str, workflow: str
                    ) -> tuple[Scope, Scope, dict]:
    """The project's scope, the workflow's scope (its runs and triggers) and the workflow."""
    outer = await session.project_scope(project)
    stored = await get_owned(outer, kinds.WORKFLOW, workflow, "workflow")
    inner = Scope(outer.tenant, outer.namespace, outer.cluster, project, workflow,
                  labels={**outer.labels, keys.LABEL_WORKFLOW: workflow})
    return outer, inner, stored


async def workflow_context(request: Request, session: UiSession, project: str,
                           workflow_name: str) -> dict:
    """What workflow.html shows."""
    outer, scope, workflow = await _workflow(session, project, workflow_name)
    triggers = [catalog.TRIGGERS.present(t) for t in await list_objects(catalog.TRIGGERS, scope)]
    stages = await stages_of(scope, workflow)
    shown, every = await newest_runs(scope, session.state, view.HISTORY_ROWS)
    return view.page_context(
        project, workflow, shown, triggers, stages,
        await _run_form(session, outer, workflow, stages), base_url=str(request.base_url),
        namespace=scope.namespace, now=datetime.now(UTC), run_count=len(every),
        success=view.success_of_last(s.phase for s in every))


@router.get(_WORKFLOW, response_class=HTMLResponse)
async def workflow_page(project: str, workflow: str, request: Request,
                        session: UiSession = Depends(ui_session)) -> HTMLResponse:
    return render(request, "workflow.html",
                  await workflow_context(request, session, project, workflow))


@router.post(_WORKFLOW + "/run", response_class=HTMLResponse)
async def run_workflow(project: str, workflow: str, request: Request,
                       session: UiSession = Depends(ui_session)) -> Response:
    """Start a run from the "Run" form; on success go to its page, else show the form
    again with the values given and the one-line reason. Only a refused form reads the
    page's runs."""
    outer, scope, stored = await _workflow(session, project, workflow)
    form = await _run_form(session, outer, stored, await stages_of(scope, stored))
    submitted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    wanted = view.run_request(form, submitted)

    async def refused(problems: list[str], status_code: int) -> HTMLResponse:
        context = await workflow_context(request, session, project, workflow)
        context.update(values=wanted.values, problems=problems)
        return render(request, "workflow.html", context, status_code=status_code)

    if wanted.problems:
        return await refused(wanted.problems, 422)
    try:
        run = await create_run(scope, ObjectBody.model_validate(wanted.body),
                               started_by=web_starter(session))
    except errors.ApiError as exc:
        return await refused([exc.message], exc.code)
    except pydantic.ValidationError as exc:
        return await refused([f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                              for e in exc.errors()], 422)
    target = run_url(project, workflow, run["metadata"]["name"])
    return RedirectResponse(target, status_code=303)


@router.get(_WORKFLOW + "/revisions", response_class=HTMLResponse)
async def revisions(project: str, workflow: str, request: Request,
                    resource: str = Query(max_length=253),
                    session: UiSession = Depends(ui_session)) -> HTMLResponse:
    """The revision picker of one Git resource: its repository's branches and tags from
    the SCM integration, or a free-text field and why the list is missing."""
    outer, _, stored = await _workflow(session, project, workflow)
    form = await _run_form(session, outer, stored, await stages_of(outer, stored))
    git = next((g for g in form.git if g.resource == resource), None)
    if git is None:
        raise errors.NotFound(f"the workflow pulls no Git resource {resource!r}")
    branches: list[str] = []
    tags: list[str] = []
    problem = ""
    if not git.integration:
        problem = "no SCM integration in this tenant: type the branch, tag or commit"
    elif not git.repo:
        problem = f"resource {git.resource} names no SCM_REPO: type the branch, tag or commit"
    else:
        try:
            query = ListQuery(limit=200, sort="name", ascending=True)
            branches = [b["name"] for b in (await scmrepos.list_branches(
                git.integration, git.repo, query, session.tenant, session.state))["items"]]
            tags = [t["name"] for t in (await scmrepos.list_tags(
                git.integration, git.repo, query, session.tenant, session.state))["items"]]
        except errors.ApiError as exc:
            problem = (f"cannot list branches of {git.repo}: {exc.message.splitlines()[0]}; "
                       "type the branch, tag or commit")
    return render(request, "workflow_revisions.html", {
        "git": git, "branches": branches, "tags": tags, "problem": problem})
