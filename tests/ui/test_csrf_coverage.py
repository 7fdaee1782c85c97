"""Every route of the web UI that changes something is CSRF-checked, and the session cookie
cannot be forged, replayed past its age, or read."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from support.ui import page_csrf

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.server import create_app
from cyclone.ui.app import mount_ui
from cyclone.ui.deps import UNSAFE_METHODS
from cyclone.ui.session import SessionSealer, SignInLinks

SIGN_IN_ROUTES = {"/login"}
"""Sign-in has no session yet: it checks the login form's own token (tests/ui/test_session)."""


def _routes(routes: list) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes)


def test_every_unsafe_ui_route_refuses_a_request_without_the_csrf_token(tmp_path: Path
                                                                         ) -> None:
    """Driven, not inspected: each route is called with a valid session and no token."""
    app = create_app(cluster=EmbeddedCluster(tmp_path / "c.db"), data_dir=tmp_path,
                     admin_token="admin", provisioning=False)
    api_routes = {(r.path, m) for r in _routes(app.routes) for m in r.methods}
    mount_ui(app, "admin")
    unsafe = sorted({(r.path, m) for r in _routes(app.routes) for m in r.methods
                     if m in UNSAFE_METHODS and r.path not in SIGN_IN_ROUTES} - api_routes)
    assert ("/logout", "POST") in unsafe
    with TestClient(app, follow_redirects=False) as client:
        form = client.get("/login").text
        csrf = page_csrf(form)
        assert client.post("/login", data={"token": "admin", "csrf": csrf}).status_code == 303
        unchecked = []
        for path, method in unsafe:
            url = re.sub(r"\{[^}]+\}", "x", path)
            response = client.request(method, url, data={"x": "1"})
            if response.status_code != 403 or "stale" not in response.text:
                unchecked.append(f"{method} {path} -> {response.status_code}")
    assert unchecked == []


def test_ui_routes_stay_out_of_the_openapi_document(tmp_path: Path) -> None:
    app = create_app(cluster=EmbeddedCluster(tmp_path / "c.db"), data_dir=tmp_path,
                     admin_token="admin", provisioning=False)
    mount_ui(app, "admin")
    with TestClient(app) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith(("/apis/", "/healthcheck", "/version",
                                                      "/metrics"))]


def test_a_sealed_session_opens_only_under_the_same_admin_token() -> None:
    cookie, session = SessionSealer("admin-1").seal("cyt.a.b.c")
    assert "cyt.a.b.c" not in cookie
    opened = SessionSealer("admin-1").open(cookie)
    assert opened == session
    assert SessionSealer("admin-2").open(cookie) is None
    assert SessionSealer("admin-1").open(cookie[:-2] + "xx") is None


def test_a_session_expires_after_its_age() -> None:
    clock = [1_800_000_000.0]
    sealer = SessionSealer("admin", max_age=60, now=lambda: clock[0])
    cookie, _ = sealer.seal("token")
    clock[0] += 60
    assert sealer.open(cookie) is not None
    clock[0] += 1
    assert sealer.open(cookie) is None


def test_a_sign_in_link_is_spent_by_its_first_use() -> None:
    links = SignInLinks()
    code = links.issue("admin-token")
    assert links.redeem(code) == "admin-token"
    assert links.redeem(code) is None
    assert links.redeem("unknown") is None


def test_an_expired_sign_in_link_signs_no_one_in() -> None:
    links = SignInLinks(lifetime=0)
    code = links.issue("admin-token")
    time.sleep(0.01)
    assert links.redeem(code) is None
