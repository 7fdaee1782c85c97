"""Mount the web UI on the server's FastAPI app: pages, their streams, static assets, and
the offline API docs pages.

The composition roots (`cyclone up`, `cyclone server`) call `mount_ui`; the REST API does
not depend on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cyclone.kube import errors
from cyclone.ui import docs, login
from cyclone.ui.deps import SignInRequired, login_url
from cyclone.ui.pages import (
    admin,
    browse,
    editor,
    insights,
    overview,
    redirects,
    run_detail,
    stage_panel,
    streams,
    workflow,
)
from cyclone.ui.run_index import stopping_run_index
from cyclone.ui.session import SessionSealer, SignInLinks
from cyclone.ui.templating import STATIC_DIR, STATIC_PREFIX, render

PAGE_MODULES = (overview, browse, workflow, editor, run_detail, stage_panel, insights, admin,
                streams, redirects)


@dataclass
class UiState:
    sealer: SessionSealer
    links: SignInLinks = field(default_factory=SignInLinks)
    secure_cookies: bool = False
    """Mark cookies `Secure` (the server is reached over HTTPS)."""


def mount_ui(app: FastAPI, admin_token: str, *, links: SignInLinks | None = None,
             secure_cookies: bool = False) -> UiState:
    """Add the pages, the static assets and the docs pages to `app`."""
    ui = UiState(SessionSealer(admin_token), links or SignInLinks(), secure_cookies)
    app.state.cyclone_ui = ui
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(docs.router)
    app.include_router(login.router)
    for module in PAGE_MODULES:
        app.include_router(module.router)
    _install_page_errors(app)
    app.router.lifespan_context = stopping_run_index(app.router.lifespan_context)
    return ui


def wants_html(request: Request) -> bool:
    if getattr(request.state, "ui_page", False):
        return True
    path = request.url.path
    if path.startswith(("/apis/", "/metrics", "/healthcheck", "/version", "/openapi.json")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _install_page_errors(app: FastAPI) -> None:
    api_error = app.exception_handlers.get(errors.ApiError)
    http_error = app.exception_handlers.get(StarletteHTTPException)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = login_url(exc.next_url)
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        if "text/event-stream" in request.headers.get("accept", ""):
            return Response("sign in required", status_code=401)
        return RedirectResponse(target, status_code=303)

    async def page_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.ApiError)
        if wants_html(request) and not request.headers.get("HX-Request"):
            return error_page(request, exc.code, exc.message)
        if request.headers.get("HX-Request"):
            return HTMLResponse(f'<div class="alert error" role="alert">{_escape(exc.message)}'
                                "</div>", status_code=exc.code,
                                headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        assert api_error is not None
        return await api_error(request, exc)

    async def page_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if wants_html(request):
            message = "page not found" if exc.status_code == 404 else str(exc.detail)
            return error_page(request, exc.status_code, message)
        assert http_error is not None
        return await http_error(request, exc)

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(errors.ApiError, page_api_error)
    app.add_exception_handler(StarletteHTTPException, page_http_error)
    for exc_class, status in ((RequestValidationError, 422), (ValidationError, 422),
                              (ValueError, 400), (Exception, 500)):
        _page_or_api_answer(app, exc_class, status)


def _page_or_api_answer(app: FastAPI, exc_class: type[Exception], status: int) -> None:
    """Bad input reaching a page route renders a page (or a flash line for htmx) with the
    API's one-line message; API routes keep their JSON answer."""
    api_handler = app.exception_handlers.get(exc_class)

    async def handler(request: Request, exc: Exception) -> Response:
        assert api_handler is not None
        answer = await api_handler(request, exc)
        if not wants_html(request):
            return answer
        message = json.loads(bytes(answer.body)).get("message") or "invalid request"
        if request.headers.get("HX-Request"):
            return HTMLResponse(f'<div class="alert error" role="alert">{_escape(message)}'
                                "</div>", status_code=status,
                                headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return error_page(request, status, message)

    app.add_exception_handler(exc_class, handler)


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message": message},
                  status_code=status)
