"""Sign in with a token, a one-time sign-in link, sign out, and the admin's tenant switch."""

from __future__ import annotations

import re
import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from cyclone.kube import errors
from cyclone.server.auth import server_state
from cyclone.server.state import ServerState
from cyclone.server.tenant_records import read_tenant
from cyclone.ui.deps import UiSession, enforce_csrf, ui_session
from cyclone.ui.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    TENANT_COOKIE,
    csrf_matches,
)
from cyclone.ui.templating import render

router = APIRouter(include_in_schema=False)
_TENANT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def safe_next(value: str | None) -> str:
    """Only a path of this site: never another origin (`//host`, `https:`, backslashes)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _ui(request: Request):
    return request.app.state.cyclone_ui


def _set_cookie(request: Request, response: Response, name: str, value: str,
                max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=_ui(request).secure_cookies, path="/")


def _login_form(request: Request, next_url: str, message: str = "", status: int = 200
                ) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = render(request, "login.html",
                      {"login_csrf": csrf, "next": next_url, "message": message},
                      status_code=status)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, csrf, 3600)
    return response


def _signed_in(request: Request, token: str, next_url: str) -> Response:
    cookie, _ = _ui(request).sealer.seal(token)
    response = RedirectResponse(safe_next(next_url), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, cookie, _ui(request).sealer.max_age)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    response.delete_cookie(TENANT_COOKIE, path="/")
    return response


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    return _login_form(request, safe_next(next))


@router.post("/login")
async def login(request: Request, token: str = Form(""), csrf: str = Form(""),
                next: str = Form("/"), state: ServerState = Depends(server_state)
                ) -> Response:
    request.state.ui_page = True
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf):
        return _login_form(request, safe_next(next),
                           "The sign-in form expired: try again.", 403)
    try:
        await state.auth.authenticate(token.strip())
    except errors.Unauthorized:
        return _login_form(request, safe_next(next), "That token is not valid.", 401)
    return _signed_in(request, token.strip(), next)


@router.get("/login/link")
async def sign_in_link(request: Request, code: str = "") -> Response:
    request.state.ui_page = True
    token = _ui(request).links.redeem(code) if code else None
    if token is None:
        return _login_form(request, "/", "That sign-in link was already used or has "
                           "expired: sign in with a token.", 401)
    return _signed_in(request, token, "/")


@router.post("/logout", dependencies=[Depends(enforce_csrf)])
async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(TENANT_COOKIE, path="/")
    return response


@router.post("/tenant", dependencies=[Depends(enforce_csrf)])
async def switch_tenant(request: Request, tenant: str = Form(...), next: str = Form("/"),
                        session: UiSession = Depends(ui_session)) -> Response:
    """The admin chooses which tenant the pages show."""
    if not session.admin:
        raise errors.Forbidden("only the admin can switch tenants")
    if not _TENANT_NAME.match(tenant) or len(tenant) > 50:
        raise errors.BadRequest(f"invalid tenant name {tenant!r}")
    await read_tenant(session.state.cluster, tenant)
    response = RedirectResponse(safe_next(next), status_code=303)
    _set_cookie(request, response, TENANT_COOKIE, tenant, None)
    return response
