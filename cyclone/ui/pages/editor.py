"""The workflow editor: stages from templates, drag-to-connect, stage forms, validation and a YAML
diff before saving.

One form carries the editor's state (`cyclone.ui.editing.EditorState`) as JSON; each
button posts one action and the page is rendered again, validated as the API would with
`dryRun=All`. Save writes the new and edited Stage objects, then the Workflow, through the
same functions as `POST`/`PUT` of the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cyclone.api import keys
from cyclone.kube import errors, kinds
from cyclone.server import catalog
from cyclone.server.crud import create_object, update_object
from cyclone.server.objects import ObjectBody
from cyclone.server.scopes import Scope, get_owned
from cyclone.server.templates import STAGE_TEMPLATES, visible_objects
from cyclone.ui import editing
from cyclone.ui.dag_view import workflow_graph
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.editing import EditError, EditorState, StageFields
from cyclone.ui.layout import layout_dag
from cyclone.ui.templating import render
from cyclone.ui.urls import workflow_url

router = ui_router()
EDIT_PATH = "/projects/{project}/workflows/{workflow}/edit"


@dataclass
class Problems:
    """What validation found, placed where the page shows it."""

    general: list[str] = field(default_factory=list)
    stages: dict[str, list[str]] = field(default_factory=dict)
    fields: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Stage → form field → messages."""

    def add(self, stage: str, message: str, form_field: str = "") -> None:
        if form_field:
            self.fields.setdefault(stage, {}).setdefault(form_field, []).append(message)
        if stage:
            self.stages.setdefault(stage, []).append(message)
        else:
            self.general.append(message)

    def __bool__(self) -> bool:
        return bool(self.general or self.stages)


@dataclass
class Workspace:
    """The stored objects the editor works against."""

    project: Scope
    workflow: dict
    stored: dict[str, dict]
    """Stage name → stored Stage object (the tenant's, as the engine looks them up)."""
    taken: set[str]
    """Every Stage name of the namespace, stage templates included."""


async def _workspace(session: UiSession, project: str, name: str) -> Workspace:
    scope = await session.project_scope(project)
    workflow = await get_owned(scope, kinds.WORKFLOW, name, "workflow")
    listed = await scope.cluster.list(kinds.STAGE, scope.namespace)
    stored = {s["metadata"]["name"]: s for s in listed.items
              if not (s["metadata"].get("labels") or {}).get(keys.LABEL_STAGE_TEMPLATE)}
    return Workspace(scope, workflow, stored, {s["metadata"]["name"] for s in listed.items})


def _spec_of(ws: Workspace, state: EditorState, name: str) -> dict[str, Any] | None:
    if name in state.stages:
        return state.stages[name]
    stored = ws.stored.get(name)
    return dict(stored.get("spec") or {}) if stored else None


def _stage_body(ws: Workspace, name: str, spec: dict) -> ObjectBody:
    stored = (ws.stored.get(name) or {}).get("metadata") or {}
    return ObjectBody.model_validate({
        "metadata": {"name": name, "labels": stored.get("labels") or {},
                     "annotations": stored.get("annotations") or {}},
        "spec": spec})


def _workflow_body(ws: Workspace, state: EditorState) -> ObjectBody:
    meta = ws.workflow["metadata"]
    return ObjectBody.model_validate({
        "metadata": {"name": meta["name"], "labels": meta.get("labels") or {},
                     "annotations": meta.get("annotations") or {},
                     "resourceVersion": state.resource_version or None},
        "spec": state.spec})


def _record(problems: Problems, exc: errors.ApiError, stage: str, names: list[str]) -> None:
    causes = (exc.details or {}).get("causes") or []
    if not causes:
        problems.add(stage, exc.message)
        return
    for cause in causes:
        path, message = str(cause.get("field") or ""), str(cause.get("message") or "")
        where = stage or editing.stage_of(path, names)
        text = f"{path}: {message}" if path else message
        problems.add(where, text, editing.field_of(path) if stage else "")


def _changed(ws: Workspace, state: EditorState) -> list[str]:
    """Stages new or edited here and still used by the workflow, in workflow order."""
    used = state.names()
    return [n for n in used if n in state.stages and (
        n in state.new or state.stages[n] != (ws.stored.get(n) or {}).get("spec"))]


def _pending(ws: Workspace, state: EditorState) -> list[dict]:
    return [{"metadata": {"name": n, "labels": {keys.LABEL_PROJECT: ws.project.project}},
             "spec": state.stages[n]} for n in state.new if n in state.names()]


async def validate(ws: Workspace, state: EditorState, problems: Problems | None = None
                   ) -> Problems:
    """Every check `PUT`/`POST` of the API makes with `dryRun=All`, of the workflow and of
    each new or edited stage; the workflow's references see the stages about to be saved."""
    problems = Problems() if problems is None else problems
    names = state.names()
    for name in _changed(ws, state):
        try:
            body = _stage_body(ws, name, state.stages[name])
            if name in state.new:
                await create_object(catalog.STAGES, ws.project, body, dry_run=True)
            else:
                await update_object(catalog.STAGES, ws.project, name, body, dry_run=True)
        except errors.ApiError as exc:
            _record(problems, exc, name, names)
        except ValidationError as exc:
            problems.add(name, _body_problem(exc))
    for name in names:
        if name not in ws.stored and name not in state.stages:
            problems.add(name, f"no Stage {name!r} in this tenant")
    try:
        await update_object(catalog.WORKFLOWS, ws.project, ws.workflow["metadata"]["name"],
                            _workflow_body(ws, state), dry_run=True,
                            pending=_pending(ws, state))
    except errors.ApiError as exc:
        _record(problems, exc, "", names)
    except ValidationError as exc:
        problems.add("", _body_problem(exc))
    return problems


def _body_problem(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


async def save(ws: Workspace, state: EditorState) -> None:
    """Write the new and edited stages, then the workflow. A stage written before a later
    write fails stays written; it is no longer new in `state`."""
    for name in _changed(ws, state):
        body = _stage_body(ws, name, state.stages[name])
        if name in state.new:
            await create_object(catalog.STAGES, ws.project, body)
            state.new.remove(name)
        else:
            await update_object(catalog.STAGES, ws.project, name, body)
    await update_object(catalog.WORKFLOWS, ws.project, ws.workflow["metadata"]["name"],
                        _workflow_body(ws, state))


async def _templates(session: UiSession) -> dict[str, dict]:
    listed = await visible_objects(STAGE_TEMPLATES, await session.scope())
    return {t["metadata"]["name"]: t for t in sorted(listed, key=lambda t: t["metadata"]["name"])}


def _apply_form_fields(ws: Workspace, state: EditorState, form: dict[str, str],
                       problems: Problems) -> StageFields | None:
    """The selected stage's form, when it was shown, written into its spec; the fields as
    typed when they do not parse (the problem is added to `problems`)."""
    name = form.get("fields_for", "")
    if not name or name not in state.names():
        return None
    editing.set_trivial(state, name, form.get("f_trivial") == "1")
    spec = _spec_of(ws, state, name)
    if spec is None or not editing.is_pod_stage(spec):
        return None
    fields = StageFields(**{k: form.get(f"f_{k}", "") for k in StageFields.NAMES})
    try:
        if fields != editing.stage_fields(spec):
            state.stages[name] = editing.apply_fields(spec, fields)
    except EditError as exc:
        problems.add(name, str(exc), exc.field)
        return fields
    wanted = form.get("f_name", name).strip()
    if wanted != name:
        try:
            editing.rename_stage(state, name, editing.check_new_name(
                wanted, [*ws.taken, *state.stages, *state.names()]))
        except EditError as exc:
            problems.add(name, str(exc), exc.field)
            return fields
    return None


async def _act(ws: Workspace, state: EditorState, action: str, form: dict[str, str],
               session: UiSession) -> None:
    verb, _, arg = action.partition(":")
    if verb == "select":
        state.item(arg)
        state.selected = arg
    elif verb == "add-template":
        templates = await _templates(session)
        template = templates.get(form.get("template", ""))
        if template is None:
            raise EditError("choose a stage template")
        taken = [*ws.taken, *state.stages, *state.names()]
        name = editing.check_new_name(form.get("new_name", "") or
                                      editing.free_name(template["metadata"]["name"], taken),
                                      taken)
        editing.add_stage(state, name, template.get("spec") or {})
    elif verb == "add-existing":
        name = form.get("existing", "")
        if name not in ws.stored:
            raise EditError("choose a stage of the project")
        editing.add_stage(state, name, None)
    elif verb == "connect":
        editing.connect(state, form.get("connect_from", ""), form.get("connect_to", ""))
    elif verb == "disconnect":
        upstream, _, downstream = arg.partition(">")
        editing.disconnect(state, upstream, downstream)
    elif verb == "remove":
        editing.remove_stage(state, arg)
    elif verb not in ("apply", "review", "save", ""):
        raise EditError(f"unknown editor action {action!r}")


def _context(ws: Workspace, state: EditorState, problems: Problems, templates: dict[str, dict],
             project: str, name: str, *, message: str = "", saved: bool = False,
             typed: StageFields | None = None) -> dict:
    names = state.names()
    graph_names, edges = workflow_graph({"spec": state.spec})
    changed = _changed(ws, state)
    notes = {n: ("new" if n in state.new else "edited" if n in changed else "")
             for n in names}
    diffs = [d for d in [editing.unified_diff(
        f"Workflow {name}",
        editing.manifest("Workflow", name, ws.workflow.get("spec") or {}),
        editing.manifest("Workflow", name, state.spec))] if d]
    for stage in changed:
        stored = ws.stored.get(stage) if stage not in state.new else None
        diff = editing.unified_diff(
            f"Stage {stage}" + (" (new)" if stored is None else ""),
            editing.manifest("Stage", stage, stored.get("spec") or {}) if stored else None,
            editing.manifest("Stage", stage, state.stages[stage]))
        if diff:
            diffs.append(diff)
    selected = state.selected if state.selected in names else ""
    spec = _spec_of(ws, state, selected) if selected else None
    base = workflow_url(project, name)
    return {
        "project": project, "name": name, "url": base, "edit_url": base + "/edit",
        "state": state, "state_json": state.to_json(), "names": names,
        "depends": {n: [str(d) for d in (state.item(n).get("depends") or [])] for n in names},
        "layout": layout_dag(graph_names, edges), "notes": notes,
        "invalid": {n: "; ".join(m) for n, m in problems.stages.items() if n in names},
        "problems": problems, "message": message, "saved": saved, "diffs": diffs,
        "templates": [(t, str(((o["metadata"].get("annotations") or {}).get(
            keys.ANNOTATION_ALIAS)) or t)) for t, o in templates.items()],
        "existing": sorted(n for n, s in ws.stored.items() if n not in names and (
            (s["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT) == project)),
        "selected": selected, "spec": spec,
        "pod": bool(spec is not None and editing.is_pod_stage(spec)),
        "fields": typed or (editing.stage_fields(spec) if spec else StageFields()),
        "field_problems": problems.fields.get(selected, {}),
        "trivial": bool(selected and state.item(selected).get("trivial")),
        "new": state.new, "changed": changed,
    }


@router.get(EDIT_PATH, response_class=HTMLResponse)
async def editor_page(project: str, workflow: str, request: Request, saved: int = 0,
                      session: UiSession = Depends(ui_session)) -> HTMLResponse:
    ws = await _workspace(session, project, workflow)
    state = EditorState.start(ws.workflow)
    problems = await validate(ws, state)
    return render(request, "editor.html", _context(
        ws, state, problems, await _templates(session), project, workflow, saved=bool(saved)))


@router.post(EDIT_PATH, response_class=HTMLResponse)
async def editor_action(project: str, workflow: str, request: Request,
                        session: UiSession = Depends(ui_session)) -> Response:
    ws = await _workspace(session, project, workflow)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    action = form.get("action", "")
    problems = Problems()
    message = ""
    typed = None
    try:
        state = EditorState.from_json(form.get("state", ""))
    except EditError as exc:
        state, message = EditorState.start(ws.workflow), str(exc)
    else:
        typed = _apply_form_fields(ws, state, form, problems)
        if typed is None:
            try:
                await _act(ws, state, action, form, session)
            except EditError as exc:
                message = str(exc)
    checked = await validate(ws, state, problems)
    status = 200
    if action == "save" and not message:
        if checked:
            message = "fix the problems shown before saving"
            status = 422
        else:
            try:
                await save(ws, state)
            except errors.Conflict:
                message = ("the workflow was changed elsewhere since this edit began: "
                           "discard the changes to start again from the stored one")
                status = 409
            except errors.ApiError as exc:
                message = exc.message.splitlines()[0]
                status = exc.code
            else:
                return RedirectResponse(f"{request.url.path}?saved=1", status_code=303)
    return render(request, "editor.html", _context(
        ws, state, checked, await _templates(session), project, workflow, message=message,
        typed=typed), status_code=status)
