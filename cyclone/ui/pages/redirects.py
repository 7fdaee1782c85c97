"""Addresses a user may type that have no page of their own: each leads to the page above
it, and the browser's `/favicon.ico` to the site's icon."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from cyclone.ui.templating import static_url
from cyclone.ui.urls import project_url, run_url, workflow_url

router = APIRouter(include_in_schema=False)


@router.get("/favicon.ico")
async def favicon() -> RedirectResponse:
    return RedirectResponse(static_url("img/cyclone.svg"), status_code=301)


@router.get("/projects/{project}/workflows")
async def workflows_of(project: str) -> RedirectResponse:
    return RedirectResponse(project_url(project), status_code=303)


@router.get("/projects/{project}/workflows/{workflow}/runs")
async def runs_of(project: str, workflow: str) -> RedirectResponse:
    return RedirectResponse(workflow_url(project, workflow), status_code=303)


@router.get("/projects/{project}/workflows/{workflow}/runs/{run}/stages")
async def stages_of(project: str, workflow: str, run: str) -> RedirectResponse:
    return RedirectResponse(run_url(project, workflow, run), status_code=303)
