"""Failure triage of a run, and the comparison of two runs of a workflow.

- `…/runs/{r}/triage`: the triage card; a fragment for htmx (the run page loads it on a
  failed run), a full page otherwise.
- `/projects/{p}/workflows/{w}/compare?a=R1&b=R2`: two runs side by side. Without `b`
  the last green run before `a` is taken; without `a` the newest run. The older run is
  always the left column, so every delta reads "from then to now" (two runs created in
  the same second keep the order they were given in).
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Iterable, Iterator

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from cyclone.kube import errors, kinds
from cyclone.server.logs.routes import stored_log
from cyclone.server.scopes import Scope, get_owned, workflow_scope
from cyclone.ui.compare import compare
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.indexed_runs import picker_runs, read_run, recent_green_runs
from cyclone.ui.insights import run_name
from cyclone.ui.pages.workflow import stages_of
from cyclone.ui.run_summary import run_phase
from cyclone.ui.templating import render
from cyclone.ui.triage import first_failure, triage
from cyclone.ui.urls import compare_url, run_url, stage_url, workflow_url

router = ui_router()
WORKFLOW_PATH = "/projects/{project}/workflows/{workflow}"
RUN_PATH = WORKFLOW_PATH + "/runs/{run}"
PICKER_LIMIT = 200
"""Runs offered in each compare picker (newest first)."""


def _split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines of a byte stream, read lazily (a long log is never held whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        yield from complete
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


async def _stage_logs(session: UiSession, project: str, workflow: str, run: str,
                      stage: str | None) -> Iterable[bytes]:
    if stage is None:
        return []
    try:
        chunks, _ = await stored_log(session.state, session.tenant, project, workflow, run,
                                     stage, None)
    except errors.ApiError:
        return []
    return chunks


def age_key(run: dict) -> tuple[str, str, str]:
    """Orders runs by creation; runs created in the same second (times are stored to the
    second) by when they started, then ended."""
    status = run.get("status") or {}
    overall = status.get("overall") or {}
    return ((run.get("metadata") or {}).get("creationTimestamp") or "",
            overall.get("startTime") or "", status.get("completionTime") or "\uffff")


@router.get(RUN_PATH + "/triage", response_class=HTMLResponse)
async def triage_page(request: Request, project: str, workflow: str, run: str,
                      session: UiSession = Depends(ui_session)) -> HTMLResponse:
    owner = await session.project_scope(project)
    wf = await get_owned(owner, kinds.WORKFLOW, workflow, "workflow")
    scope = await workflow_scope(workflow, owner)
    obj = await get_owned(scope, kinds.WORKFLOW_RUN, run, "workflowrun")
    greens = await recent_green_runs(scope, obj, session.state, 1)
    green = greens[0] if greens else None
    stage = first_failure(obj, wf)
    chunks = await _stage_logs(session, project, workflow, run, stage)
    stages = await stages_of(scope, wf) if green is not None else None
    found = await asyncio.to_thread(
        lambda: triage(obj, wf, green, lambda s: _split_lines(chunks) if s == stage else [],
                       stages=stages))
    phase = run_phase(obj)
    base = run_url(project, workflow, run)
    context = {
        "project": project, "workflow": workflow, "name": run, "phase": phase,
        "triage": found, "run_url": base, "workflow_url": workflow_url(project, workflow),
        "stage_url": stage_url(project, workflow, run, found.stage) if found.stage else "",
        "green_url": run_url(project, workflow, found.last_green) if found.last_green else "",
        "compare_url": compare_url(project, workflow, a=run),
    }
    template = "insights/triage_card.html" if request.headers.get("HX-Request") \
        else "insights/triage.html"
    return render(request, template, context)


@router.get(WORKFLOW_PATH + "/compare", response_class=HTMLResponse)
async def compare_page(request: Request, project: str, workflow: str,
                       a: str | None = None, b: str | None = None,
                       session: UiSession = Depends(ui_session)) -> HTMLResponse:
    scope = await session.workflow_scope(project, workflow)
    offered = await picker_runs(scope, session.state, PICKER_LIMIT)
    context: dict = {"project": project, "workflow": workflow,
                     "workflow_url": workflow_url(project, workflow),
                     "runs": offered, "a": a or "", "b": b or "",
                     "comparison": None, "note": ""}
    newest = await read_run(scope, offered[0].name) if offered and not a else None
    run_a = await _picked(scope, a) if a else newest
    if run_a is None:
        context["note"] = "This workflow has no runs yet."
        return render(request, "insights/compare.html", context)
    context["a"] = run_name(run_a)
    if b:
        run_b = await _picked(scope, b)
    else:
        greens = await recent_green_runs(scope, run_a, session.state, 1)
        run_b = greens[0] if greens else None
        if run_b is None:
            context["note"] = (f"No green run of this workflow before {run_name(run_a)}: "
                               "pick a run to compare with.")
            return render(request, "insights/compare.html", context)
    context["b"] = run_name(run_b)
    older, newer = (run_b, run_a) if not b else sorted((run_a, run_b), key=age_key)
    context["comparison"] = compare(older, newer)
    context["run_url"] = lambda name: run_url(project, workflow, name)
    return render(request, "insights/compare.html", context)


async def _picked(scope: Scope, name: str) -> dict:
    """A run of the workflow by name (NotFound as for any run the scope does not own)."""
    return await get_owned(scope, kinds.WORKFLOW_RUN, name, "workflowrun")
