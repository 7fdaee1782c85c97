"""What every page route depends on: the signed-in session, the tenant it acts on, and the
CSRF check of every request that changes something.

Every UI router is made by `ui_router()`, whose dependency refuses an unsafe method
(POST/PUT/PATCH/DELETE) without the session's CSRF token, so no form can forget it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request

from cyclone.api import keys
from cyclone.kube import errors
from cyclone.server.auth import Principal, server_state
from cyclone.server.runs import starter
from cyclone.server.scopes import Scope, project_scope, tenant_scope, workflow_scope
from cyclone.server.state import ServerState
from cyclone.ui.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    TENANT_COOKIE,
    SessionSealer,
    csrf_matches,
)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TENANT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SignInRequired(Exception):
    """No valid session: pages redirect to /login, streams and fragments answer 401."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__("sign in required")
        self.next_url = next_url


class CsrfRejected(errors.Forbidden):
    def __init__(self) -> None:
        super().__init__("the form is stale or was not sent by this site: reload the page "
                         "and try again")


@dataclass(frozen=True)
class UiSession:
    """The signed-in user of a page request."""

    principal: Principal
    token: str
    csrf: str
    tenant: str
    """The tenant the pages act on: the token's own, or the admin's choice."""
    state: ServerState

    @property
    def admin(self) -> bool:
        return self.principal.admin

    async def scope(self) -> Scope:
        return await tenant_scope(self.tenant, self.state)

    async def project_scope(self, project: str) -> Scope:
        return await project_scope(project, await self.scope())

    async def workflow_scope(self, project: str, workflow: str) -> Scope:
        return await workflow_scope(workflow, await self.project_scope(project))


def web_starter(session: UiSession) -> str:
    """Who starts a run from a page (`keys.ANNOTATION_STARTED_BY`)."""
    return starter(session.principal, "the web UI")


def sealer(request: Request) -> SessionSealer:
    return request.app.state.cyclone_ui.sealer


def _next_url(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


async def ui_session(request: Request, state: ServerState = Depends(server_state)
                     ) -> UiSession:
    """The session of the request's cookie, checked against the token store now."""
    request.state.ui_page = True
    sealed = sealer(request).open(request.cookies.get(SESSION_COOKIE))
    if sealed is None:
        raise SignInRequired(_next_url(request))
    try:
        principal = await state.auth.authenticate(sealed.token)
    except errors.Unauthorized:
        raise SignInRequired(_next_url(request)) from None
    if principal.admin:
        chosen = request.cookies.get(TENANT_COOKIE, "") or keys.DEFAULT_TENANT
        tenant = chosen if _TENANT_NAME.match(chosen) and len(chosen) <= 50 \
            else keys.DEFAULT_TENANT
    else:
        tenant = principal.tenant or ""
    session = UiSession(principal, sealed.token, sealed.csrf, tenant, state)
    request.state.ui_session = session
    return session


async def enforce_csrf(request: Request) -> None:
    """Refuse an unsafe request whose CSRF token is not the session's."""
    request.state.ui_page = True
    if request.method not in UNSAFE_METHODS:
        return
    sealed = sealer(request).open(request.cookies.get(SESSION_COOKIE))
    if sealed is None:
        raise SignInRequired(request.headers.get("HX-Current-URL") or "/")
    given = request.headers.get(CSRF_HEADER)
    if not given and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        given = (await request.form()).get(CSRF_FIELD)
    if not csrf_matches(sealed.csrf, given if isinstance(given, str) else None):
        raise CsrfRejected()


def ui_router(**kwargs) -> APIRouter:
    """A router for pages: excluded from the OpenAPI document, every unsafe request
    CSRF-checked."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(enforce_csrf)], **kwargs)


def login_url(next_url: str) -> str:
    return "/login" if next_url in ("", "/") else f"/login?next={quote(next_url, safe='/')}"
