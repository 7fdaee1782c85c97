"""Signing in and out of the web UI: the session cookie, CSRF on every change, the one-time
sign-in link, and what a tenant's session reaches."""

from __future__ import annotations

import re

import httpx
from support.live_up import LiveUp, live_up
from support.ui import page_csrf, signed_in_client


def test_pages_redirect_to_sign_in_without_a_session(ui_up: LiveUp) -> None:
    response = httpx.get(f"{ui_up.url}/?phase=Failed", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/%3Fphase%3DFailed"


def test_signing_in_sets_an_http_only_strict_cookie(ui_up: LiveUp) -> None:
    with httpx.Client(base_url=ui_up.url) as client:
        form = client.get("/login")
        response = client.post("/login", data={"token": ui_up.token,
                                               "csrf": page_csrf(form.text)})
        assert response.status_code == 303
        cookie = next(v for k, v in response.headers.multi_items()
                      if k == "set-cookie" and v.startswith("cyclone_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert ui_up.token not in cookie
        assert client.get("/", follow_redirects=False).status_code == 200


def test_a_wrong_token_is_refused_with_the_form_again(ui_up: LiveUp) -> None:
    with httpx.Client(base_url=ui_up.url) as client:
        form = client.get("/login")
        response = client.post("/login", data={"token": "nope", "csrf": page_csrf(form.text)})
        assert response.status_code == 401
        assert "That token is not valid." in response.text
        assert "cyclone_session" not in client.cookies


def test_sign_in_without_the_form_csrf_is_refused(ui_up: LiveUp) -> None:
    with httpx.Client(base_url=ui_up.url) as client:
        client.get("/login")
        response = client.post("/login", data={"token": ui_up.token, "csrf": "forged"})
        assert response.status_code == 403
        assert "cyclone_session" not in client.cookies


def test_sign_out_needs_the_session_csrf_token(ui_up: LiveUp) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        refused = client.post("/logout", data={"csrf": "forged"})
        assert refused.status_code == 403
        assert client.get("/", follow_redirects=False).status_code == 200
        done = client.post("/logout", data={"csrf": client.csrf})
        assert done.status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 303


def test_a_forged_session_cookie_is_not_a_session(ui_up: LiveUp) -> None:
    response = httpx.get(f"{ui_up.url}/", cookies={"cyclone_session": "gAAAAAforged"},
                         follow_redirects=False)
    assert response.status_code == 303


def test_next_never_leaves_the_site(ui_up: LiveUp) -> None:
    with httpx.Client(base_url=ui_up.url) as client:
        form = client.get("/login")
        response = client.post("/login", data={"token": ui_up.token, "next": "//evil.example/",
                                               "csrf": page_csrf(form.text)})
        assert response.headers["location"] == "/"


def test_cyclone_up_prints_a_sign_in_link_that_works_once(tmp_path, capsys) -> None:
    with live_up(tmp_path / "up") as instance:
        printed = capsys.readouterr().out
        found = re.search(r"web UI: +(http://\S+/login/link\?code=\S+)", printed)
        assert found, printed
        with httpx.Client() as first:
            assert first.get(found.group(1)).status_code == 303
            assert first.get(f"{instance.url}/", follow_redirects=False).status_code == 200
        with httpx.Client() as second:
            again = second.get(found.group(1))
            assert again.status_code == 401
            assert "already used or has expired" in again.text
            assert second.get(f"{instance.url}/", follow_redirects=False).status_code == 303


def test_a_form_missing_a_field_answers_a_page_not_json(ui_up: LiveUp) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        response = client.post("/tenant", data={"csrf": client.csrf},
                               headers={"Accept": "text/html"})
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("text/html")
        assert "tenant" in response.text and "Traceback" not in response.text
        fragment = client.post("/tenant", data={"csrf": client.csrf},
                               headers={"HX-Request": "true"})
        assert fragment.status_code == 422
        assert fragment.headers["HX-Retarget"] == "#flash"
        assert fragment.text.startswith('<div class="alert error"')


def test_addresses_without_a_page_lead_to_the_page_above(ui_up: LiveUp) -> None:
    for typed, lands in (("/projects/p1/workflows", "/projects/p1"),
                         ("/projects/p1/workflows/w1/runs", "/projects/p1/workflows/w1"),
                         ("/projects/p1/workflows/w1/runs/r1/stages",
                          "/projects/p1/workflows/w1/runs/r1")):
        answer = httpx.get(f"{ui_up.url}{typed}", follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, lands)
    icon = httpx.get(f"{ui_up.url}/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
