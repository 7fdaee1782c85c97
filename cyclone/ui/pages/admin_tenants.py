"""Tenants (`/tenants`, the admin's only; a tenant session finds no such page): list,
create, edit and delete tenants; a tenant's tokens listed, issued (the token shown once,
on the answer to the issuing request) and revoked."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from cyclone.api.tenant import POD_FEATURES, Tenant
from cyclone.kube import errors
from cyclone.server import tenants
from cyclone.server.listing import ListQuery
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.pages.admin_common import (
    problems_of,
    require_admin,
    see_other,
    submitted,
    text_fields,
)
from cyclone.ui.pages.admin_forms import TENANT_FIELDS, parse_quota, quota_text, tenant_body
from cyclone.ui.templating import render

router = ui_router()
NO_STORE = {"Cache-Control": "no-store"}


async def admin_session(session: UiSession = Depends(ui_session)) -> UiSession:
    require_admin(session)
    return session


def _form(request: Request, values: dict, features: list[str], *, editing: str = "",
          problems: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "admin/tenant_form.html",
                  {"values": values, "features": features, "all_features": POD_FEATURES,
                   "editing": editing, "problems": problems or {}}, status_code=status)


def _values(tenant: dict) -> tuple[dict[str, str], list[str]]:
    spec = tenant.get("spec") or {}
    pvc = spec.get("persistentVolumeClaim") or {}
    return ({"name": tenant["metadata"]["name"], "pvc.size": pvc.get("size") or "",
             "pvc.storageClass": pvc.get("storageClass") or "",
             "quota": quota_text(spec.get("resourceQuota")),
             "allowLocalAddresses": "on" if spec.get("allowLocalAddresses") else ""},
            list(spec.get("allowedPodFeatures") or []))


async def _save(request: Request, session: UiSession, name: str | None) -> Response:
    raw = await submitted(request)
    form = text_fields(raw)
    features = [f for f in raw.getlist("features") if isinstance(f, str)]
    values = {k: form.get(k, "") for k in ("name", "pvc.size", "pvc.storageClass", "quota",
                                           "allowLocalAddresses")}
    if name is not None:
        values["name"] = name
    quota, problem = parse_quota(values["quota"])
    if problem:
        return _form(request, values, features, editing=name or "",
                     problems={"quota": problem}, status=422)
    try:
        body = Tenant.model_validate(tenant_body(form, features, quota, name))
        if name is None:
            saved = await tenants.create_tenant(body, state=session.state, _=session.principal)
        else:
            saved = await tenants.update_tenant(name, body, state=session.state,
                                                _=session.principal)
    except (errors.ApiError, ValidationError, RequestValidationError) as exc:
        if isinstance(exc, errors.NotFound) and name is not None:
            raise
        status, problems = problems_of(exc, TENANT_FIELDS)
        return _form(request, values, features, editing=name or "", problems=problems,
                     status=status)
    return see_other(f"/tenants/{saved['metadata']['name']}")


async def _tenant_page(request: Request, session: UiSession, name: str,
                       issued: dict | None = None, status: int = 200) -> HTMLResponse:
    tenant = await tenants.get_tenant(name, state=session.state, principal=session.principal)
    tokens = await tenants.list_tokens(name, state=session.state, principal=session.principal)
    return render(request, "admin/tenant.html",
                  {"tenant": tenant, "spec": tenant.get("spec") or {},
                   "tokens": tokens["items"], "issued": issued},
                  status_code=status, headers=NO_STORE if issued else None)


@router.get("/tenants", response_class=HTMLResponse)
async def listing(request: Request, session: UiSession = Depends(admin_session)
                  ) -> HTMLResponse:
    listed = await tenants.list_tenants(ListQuery(sort="name", ascending=True),
                                        state=session.state, _=session.principal)
    return render(request, "admin/tenants.html", {"tenants": listed["items"]})


@router.get("/tenants/new", response_class=HTMLResponse)
async def new(request: Request, session: UiSession = Depends(admin_session)) -> HTMLResponse:
    return _form(request, {"pvc.size": "10Gi"}, [])


@router.post("/tenants")
async def create(request: Request, session: UiSession = Depends(admin_session)) -> Response:
    return await _save(request, session, None)


@router.get("/tenants/{name}", response_class=HTMLResponse)
async def view(name: str, request: Request, session: UiSession = Depends(admin_session)
               ) -> HTMLResponse:
    return await _tenant_page(request, session, name)


@router.get("/tenants/{name}/edit", response_class=HTMLResponse)
async def edit(name: str, request: Request, session: UiSession = Depends(admin_session)
               ) -> HTMLResponse:
    tenant = await tenants.get_tenant(name, state=session.state, principal=session.principal)
    values, features = _values(tenant)
    return _form(request, values, features, editing=name)


@router.post("/tenants/{name}")
async def update(name: str, request: Request, session: UiSession = Depends(admin_session)
                 ) -> Response:
    return await _save(request, session, name)


@router.post("/tenants/{name}/delete")
async def delete(name: str, request: Request, session: UiSession = Depends(admin_session)
                 ) -> Response:
    await tenants.delete_tenant(name, state=session.state, _=session.principal)
    return see_other("/tenants")


@router.post("/tenants/{name}/tokens", response_class=HTMLResponse)
async def issue(name: str, request: Request, session: UiSession = Depends(admin_session)
                ) -> HTMLResponse:
    description = text_fields(await submitted(request)).get("description", "").strip()
    try:
        body = tenants.TokenRequest(description=description)
    except ValidationError:
        return await _tenant_page(request, session, name, status=422, issued={
            "problem": "the description is at most 256 characters"})
    issued = await tenants.issue_token(name, body, state=session.state, _=session.principal)
    return await _tenant_page(request, session, name, issued=issued)


@router.post("/tenants/{name}/tokens/{token_id}/revoke")
async def revoke(name: str, token_id: str, request: Request,
                 session: UiSession = Depends(admin_session)) -> Response:
    await tenants.revoke_token(name, token_id, state=session.state,
                               principal=session.principal)
    return see_other(f"/tenants/{name}")
