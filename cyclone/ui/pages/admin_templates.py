"""Stage templates (`/templates`) and resource types (`/resourcetypes`): the tenant's own
and the built-in ones, each viewed as YAML; the tenant's own created, edited and deleted
through the server's functions (built-ins are read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from cyclone.api import keys
from cyclone.kube import errors
from cyclone.server.crud import KindRoutes, create_object, delete_object, update_object
from cyclone.server.objects import ObjectBody, strip_server_metadata
from cyclone.server.templates import (
    RESOURCE_TYPES,
    STAGE_TEMPLATES,
    get_shared,
    is_builtin,
    visible_objects,
)
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.pages.admin_common import problems_of, see_other, submitted, text_fields
from cyclone.ui.pages.admin_forms import (
    OBJECT_FIELDS,
    arguments_of,
    metadata,
    spec_from_yaml,
    spec_yaml,
)
from cyclone.ui.templating import render

router = ui_router()


@dataclass(frozen=True)
class Catalog:
    routes: KindRoutes
    path: str
    title: str
    one: str
    example: dict


TEMPLATES = Catalog(STAGE_TEMPLATES, "/templates", "Stage templates", "stage template", {
    "pod": {"inputs": {"arguments": [
        {"name": "image", "value": "alpine:3.20", "description": "Image to run in"},
        {"name": "cmd", "value": "echo hello", "description": "Shell commands to run"}]},
        "spec": {"containers": [{"image": "{{ image }}",
                                 "command": ["/bin/sh", "-e", "-c", "{{{ cmd }}}"]}]}}})
RESOURCE_TYPE_PAGES = Catalog(RESOURCE_TYPES, "/resourcetypes", "Resource types",
                              "resource type", {
                                  "type": "MyType", "resolver": "registry.example/resolver:1",
                                  "operations": ["pull"],
                                  "parameters": [{"name": "URL", "required": True}]})


def _row(obj: dict) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    spec = obj.get("spec") or {}
    return {"name": meta.get("name"), "alias": annotations.get(keys.ANNOTATION_ALIAS) or "",
            "description": annotations.get(keys.ANNOTATION_DESCRIPTION) or "",
            "builtin": is_builtin(obj),
            "scene": (meta.get("labels") or {}).get(keys.LABEL_SCENE) or "",
            "arguments": arguments_of(obj), "resolver": spec.get("resolver") or "",
            "operations": spec.get("operations") or [], "type": spec.get("type") or "",
            "parameters": spec.get("parameters") or [],
            "created": meta.get("creationTimestamp")}


def _manifest(obj: dict) -> str:
    meta = strip_server_metadata(dict(obj.get("metadata") or {}))
    meta.pop("namespace", None)
    return spec_yaml({"apiVersion": obj.get("apiVersion") or keys.API_VERSION,
                      "kind": obj.get("kind"), "metadata": meta, "spec": obj.get("spec")})


def _form(request: Request, catalog: Catalog, values: dict[str, str], *, editing: str = "",
          problems: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "admin/template_form.html",
                  {"catalog": catalog, "values": values, "editing": editing,
                   "problems": problems or {}}, status_code=status)


async def _save(request: Request, session: UiSession, catalog: Catalog,
                name: str | None) -> Response:
    form = text_fields(await submitted(request))
    values = {k: form.get(k, "") for k in ("name", "alias", "description", "spec")}
    if name is not None:
        values["name"] = name
    spec, problem = spec_from_yaml(values["spec"])
    if problem:
        return _form(request, catalog, values, editing=name or "",
                     problems={"spec": problem}, status=422)
    scope = await session.scope()
    try:
        body = ObjectBody.model_validate({"metadata": metadata(form, name), "spec": spec})
        if name is None:
            saved = await create_object(catalog.routes, scope, body)
        else:
            if is_builtin(await get_shared(catalog.routes, scope, name)):
                raise errors.Forbidden(f"built-in {catalog.one} {name!r} is read-only")
            saved = await update_object(catalog.routes, scope, name, body)
    except (errors.ApiError, ValidationError) as exc:
        if isinstance(exc, errors.NotFound) and name is not None:
            raise
        status, problems = problems_of(exc, OBJECT_FIELDS)
        return _form(request, catalog, values, editing=name or "", problems=problems,
                     status=status)
    return see_other(f"{catalog.path}/{saved['metadata']['name']}")


def _routes(catalog: Catalog) -> None:
    async def listing(request: Request, session: UiSession = Depends(ui_session)
                      ) -> HTMLResponse:
        items = await visible_objects(catalog.routes, await session.scope())
        rows = sorted((_row(o) for o in items), key=lambda r: (r["builtin"], r["name"]))
        return render(request, "admin/templates.html", {"catalog": catalog, "rows": rows})

    async def new(request: Request, session: UiSession = Depends(ui_session)) -> HTMLResponse:
        return _form(request, catalog, {"spec": spec_yaml(catalog.example)})

    async def create(request: Request, session: UiSession = Depends(ui_session)) -> Response:
        return await _save(request, session, catalog, None)

    async def view(name: str, request: Request, session: UiSession = Depends(ui_session)
                   ) -> HTMLResponse:
        obj = await get_shared(catalog.routes, await session.scope(), name)
        return render(request, "admin/template.html",
                      {"catalog": catalog, "item": _row(obj), "manifest": _manifest(obj)})

    async def edit(name: str, request: Request, session: UiSession = Depends(ui_session)
                   ) -> HTMLResponse:
        obj = await get_shared(catalog.routes, await session.scope(), name)
        if is_builtin(obj):
            raise errors.Forbidden(f"built-in {catalog.one} {name!r} is read-only")
        row = _row(obj)
        return _form(request, catalog, {"name": name, "alias": row["alias"],
                                        "description": row["description"],
                                        "spec": spec_yaml(obj.get("spec"))}, editing=name)

    async def update(name: str, request: Request, session: UiSession = Depends(ui_session)
                     ) -> Response:
        return await _save(request, session, catalog, name)

    async def delete(name: str, request: Request, session: UiSession = Depends(ui_session)
                     ) -> Response:
        scope = await session.scope()
        if is_builtin(await get_shared(catalog.routes, scope, name)):
            raise errors.Forbidden(f"built-in {catalog.one} {name!r} is read-only")
        await delete_object(catalog.routes, scope, name)
        return see_other(catalog.path)

    item = catalog.path + "/{name}"
    router.add_api_route(catalog.path, listing, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(catalog.path + "/new", new, methods=["GET"],
                         response_class=HTMLResponse)
    router.add_api_route(catalog.path, create, methods=["POST"])
    router.add_api_route(item, view, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(item + "/edit", edit, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(item, update, methods=["POST"])
    router.add_api_route(item + "/delete", delete, methods=["POST"])


_routes(TEMPLATES)
_routes(RESOURCE_TYPE_PAGES)
