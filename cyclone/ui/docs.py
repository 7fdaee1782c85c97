"""The API docs pages (Swagger UI at /docs, ReDoc at /redoc) from vendored assets, so they
work offline."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from cyclone.ui.templating import PAGE_HEADERS, static_url

router = APIRouter(include_in_schema=False)
SWAGGER = "vendor/swagger-ui-5.35.0"
REDOC = "vendor/redoc-2.5.4"


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(Markup(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>{}</title>{}</head><body>{}</body></html>"
    ).format(title, Markup(head), Markup(body)), headers=PAGE_HEADERS)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    head = f'<link rel="stylesheet" href="{static_url(SWAGGER + "/swagger-ui.css")}">'
    body = (
        '<div id="swagger-ui"></div>'
        f'<script src="{static_url(SWAGGER + "/swagger-ui-bundle.js")}"></script>'
        f'<script src="{static_url("js/docs.js")}"></script>'
    )
    return _page("Cyclone API", head, body)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    body = (
        '<redoc spec-url="/openapi.json"></redoc>'
        f'<script src="{static_url(REDOC + "/redoc.standalone.js")}"></script>'
    )
    return _page("Cyclone API reference", "", body)
