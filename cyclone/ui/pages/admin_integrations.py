"""Integrations (`/integrations`): list, view, create, edit and delete a tenant's
integrations of every type, test an SCM's or a cluster's connection, and open or close a
Cluster integration, all through the server's own functions.

Credentials are write-only: pages show only whether one is stored; an edit form's
credential inputs are empty, and a blank one keeps the stored value.
"""

from __future__ import annotations

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from cyclone.api import keys
from cyclone.api.integration import Integration
from cyclone.engine.core import provisioning as plan
from cyclone.kube import errors
from cyclone.server import clusters, integrations
from cyclone.server.listing import ListQuery
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.pages.admin_common import (
    one_line,
    problems_of,
    see_other,
    submitted,
    text_fields,
)
from cyclone.ui.pages.admin_connection import check_connection
from cyclone.ui.pages.admin_forms import (
    INTEGRATION_TYPES,
    SOURCE_FIELDS,
    SOURCE_KEYS,
    Field,
    FormValues,
    form_values,
    general_items,
    input_name,
    integration_fields,
    integration_spec,
    metadata,
    secret_summary,
)
from cyclone.ui.templating import render

router = ui_router()


def summary(item: dict) -> dict:
    spec = item.get("spec") or {}
    kind = str(spec.get("type") or "")
    source = spec.get(SOURCE_KEYS.get(kind, ""))
    address = ""
    if isinstance(source, dict):
        address = str(source.get("server") or (source.get("credential") or {}).get("server")
                      or ("Cyclone's own cluster" if source.get("isControlCluster") else ""))
    cluster = source if kind == "Cluster" and isinstance(source, dict) else None
    provisioning = ((item.get("status") or {}).get("provisioning") or {})
    return {"name": item["metadata"]["name"], "type": kind,
            "scm_type": (source or {}).get("type") if kind == "SCM" else "",
            "alias": (item["metadata"].get("annotations") or {}).get(keys.ANNOTATION_ALIAS, ""),
            "address": address, "secrets": secret_summary(item),
            "open": bool(cluster and cluster.get("isWorkerCluster")),
            "provisioning": provisioning.get("state") or "",
            "provisioning_message": provisioning.get("message") or "",
            "created": item["metadata"].get("creationTimestamp")}


def _fact(field: Field, value: str) -> str:
    if field.secret:
        return ""
    if field.kind == "bool":
        return "yes" if value else ""
    return value


def _testable(kind: str) -> bool:
    return kind in ("SCM", "Cluster")


def _form(request: Request, kind: str, form: FormValues, *, editing: str = "",
          problems: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    fields = [{"name": input_name(kind, f), "field": f}
              for f in SOURCE_FIELDS.get(kind, ())]
    general = [*form.general, ("", False)]
    return render(request, "admin/integration_form.html",
                  {"kind": kind, "types": INTEGRATION_TYPES, "fields": fields,
                   "values": form.values, "stored": form.stored_secrets, "general": general,
                   "editing": editing, "problems": problems or {}}, status_code=status)


def _resubmitted(kind: str, form: dict[str, str], stored: FormValues | None) -> FormValues:
    """The form shown again after a refusal: what was typed, except credentials."""
    values = {k: v for k, v in form.items() if k != "csrf"}
    for field in SOURCE_FIELDS.get(kind, ()):
        if field.secret:
            values.pop(input_name(kind, field), None)
    stored_general = dict(stored.general) if stored else {}
    general = tuple((item["name"], stored_general.get(item["name"], False))
                    for item in general_items(form))
    return FormValues(values, stored.stored_secrets if stored else frozenset(), general)


async def _save(request: Request, session: UiSession, name: str | None) -> Response:
    form = text_fields(await submitted(request))
    stored: FormValues | None = None
    if name is not None:
        current = await integrations.get_integration(name, tenant=session.tenant,
                                                     state=session.state)
        kind = str(current["spec"].get("type"))
        stored = form_values(current)
    else:
        kind = form.get("type", "")
        if kind not in INTEGRATION_TYPES:
            return _form(request, "SCM", _resubmitted("SCM", form, None),
                         problems={"type": f"choose one of {', '.join(INTEGRATION_TYPES)}"},
                         status=422)
    fields = integration_fields(kind)
    try:
        body = Integration.model_validate({"metadata": metadata(form, name),
                                           "spec": integration_spec(kind, form)})
        if name is None:
            saved = await integrations.create_integration(body, tenant=session.tenant,
                                                          state=session.state)
        else:
            saved = await integrations.update_integration(name, body, tenant=session.tenant,
                                                          state=session.state)
    except (errors.ApiError, ValidationError, RequestValidationError) as exc:
        if isinstance(exc, errors.NotFound) and name is not None:
            raise
        status, problems = problems_of(exc, fields)
        return _form(request, kind, _resubmitted(kind, form, stored), editing=name or "",
                     problems=problems, status=status)
    return see_other(f"/integrations/{saved['metadata']['name']}")


@router.get("/integrations", response_class=HTMLResponse)
async def listing(request: Request, session: UiSession = Depends(ui_session)) -> HTMLResponse:
    listed = await integrations.list_integrations(ListQuery(sort="name", ascending=True),
                                                  tenant=session.tenant, state=session.state)
    rows = [summary(i) for i in listed["items"]]
    return render(request, "admin/integrations.html", {"rows": rows, "testable": _testable})


@router.get("/integrations/new", response_class=HTMLResponse)
async def new(request: Request, type: str = Query("SCM", max_length=40),
              session: UiSession = Depends(ui_session)) -> HTMLResponse:
    kind = type if type in INTEGRATION_TYPES else "SCM"
    return _form(request, kind, FormValues({"type": kind}, frozenset()))


@router.post("/integrations")
async def create(request: Request, session: UiSession = Depends(ui_session)) -> Response:
    return await _save(request, session, None)


@router.get("/integrations/{name}", response_class=HTMLResponse)
async def view(name: str, request: Request, session: UiSession = Depends(ui_session)
               ) -> HTMLResponse:
    item = await integrations.get_integration(name, tenant=session.tenant, state=session.state)
    row = summary(item)
    kind = row["type"]
    shown = form_values(item)
    facts = [(f.label, _fact(f, shown.values.get(input_name(kind, f), "")),
              input_name(kind, f) in shown.stored_secrets if f.secret else None)
             for f in SOURCE_FIELDS.get(kind, ())]
    source = (item.get("spec") or {}).get("cluster") or {}
    placement = {"namespace": plan.workload_namespace(session.tenant, source),
                 "executionCluster": plan.execution_cluster_name(name, source)} \
        if kind == "Cluster" else None
    return render(request, "admin/integration.html",
                  {"row": row, "facts": facts, "general": shown.general,
                   "description": shown.values.get("description", ""),
                   "testable": _testable(kind), "placement": placement})


@router.get("/integrations/{name}/edit", response_class=HTMLResponse)
async def edit(name: str, request: Request, session: UiSession = Depends(ui_session)
               ) -> HTMLResponse:
    item = await integrations.get_integration(name, tenant=session.tenant, state=session.state)
    return _form(request, str(item["spec"].get("type")), form_values(item), editing=name)


@router.post("/integrations/{name}")
async def update(name: str, request: Request, session: UiSession = Depends(ui_session)
                 ) -> Response:
    return await _save(request, session, name)


@router.post("/integrations/{name}/delete")
async def delete(name: str, request: Request, session: UiSession = Depends(ui_session)
                 ) -> Response:
    await integrations.delete_integration(name, tenant=session.tenant, state=session.state)
    return see_other("/integrations")


@router.post("/integrations/{name}/test", response_class=HTMLResponse)
async def test_route(name: str, request: Request, session: UiSession = Depends(ui_session)
                     ) -> HTMLResponse:
    outcome = await check_connection(session.state, session.tenant, name)
    return render(request, "admin/connection.html", {"outcome": outcome})


async def _open_or_close(request: Request, session: UiSession, name: str, opened: bool
                         ) -> Response:
    route = clusters.open_cluster_route if opened else clusters.close_cluster_route
    try:
        await route(name, tenant=session.tenant, state=session.state)
    except errors.NotFound:
        raise
    except errors.ApiError as exc:
        return render(request, "admin/refused.html",
                      {"message": one_line(exc), "back": f"/integrations/{name}",
                       "what": "open" if opened else "close"}, status_code=exc.code)
    back = (await submitted(request)).get("back")
    return see_other(back if back in ("/clusters",) else f"/integrations/{name}")


@router.post("/integrations/{name}/open")
async def open_cluster(name: str, request: Request, session: UiSession = Depends(ui_session)
                       ) -> Response:
    return await _open_or_close(request, session, name, True)


@router.post("/integrations/{name}/close")
async def close_cluster(name: str, request: Request, session: UiSession = Depends(ui_session)
                        ) -> Response:
    return await _open_or_close(request, session, name, False)

