"""Signing in to the web UI from tests: with httpx (cookies, CSRF) or a real Chromium page."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
"""Without the background-networking flags Chromium keeps dialling out of this closed
network at every start."""
ARTIFACTS = Path(os.environ.get("CYCLONE_TEST_ARTIFACTS", "test-artifacts")) / "ui"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def expect(response: httpx.Response, *codes: int) -> dict:
    """The JSON body of `response` (or {}), after asserting its status is one of `codes`."""
    assert response.status_code in codes, (response.request.url, response.status_code,
                                           response.text)
    return response.json() if response.content else {}


def page_csrf(html: str) -> str:
    """The CSRF token a page embeds in its forms."""
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@contextlib.contextmanager
def signed_in_client(base_url: str, token: str, **kwargs: Any) -> Iterator[httpx.Client]:
    """An httpx client holding a session cookie for `token`; `client.csrf` is its CSRF token."""
    with httpx.Client(base_url=base_url, timeout=30, **kwargs) as client:
        form = client.get("/login")
        response = client.post("/login", data={"token": token, "csrf": page_csrf(form.text),
                                               "next": "/"})
        assert response.status_code == 303, response.text
        client.csrf = page_csrf(client.get("/").text)  # type: ignore[attr-defined]
        yield client


def new_tenant(api: httpx.Client, prefix: str = "ui",
               open_cluster: bool = False) -> tuple[str, str]:
    """A new tenant (admin client on the API) and a token of it: (name, token).

    The shared `cyclone up` opens no cluster for new tenants; with ``open_cluster`` the
    tenant opens the control cluster in its own namespace, as the default settings would,
    so its runs can start."""
    name = f"{prefix}{secrets.token_hex(3)}"
    response = api.post("/apis/v1alpha1/tenants", json={
        "metadata": {"name": name},
        "spec": {"persistentVolumeClaim": {"size": "1Gi"}}})
    assert response.status_code == 201, response.text
    if open_cluster:
        tenant = {"X-Tenant": name}
        response = api.post("/apis/v1alpha1/integrations", headers=tenant, json={
            "metadata": {"name": "control"}, "spec": {"type": "Cluster", "cluster": {
                "isControlCluster": True, "namespace": f"cyclone-{name}"}}})
        assert response.status_code == 201, response.text
        response = api.put("/apis/v1alpha1/integrations/control/opencluster", headers=tenant)
        assert response.status_code == 200, response.text
    response = api.post(f"/apis/v1alpha1/tenants/{name}/tokens", json={"description": "ui"})
    assert response.status_code == 201, response.text
    return name, response.json()["token"]


def browser_sign_in(page: Any, base_url: str, token: str) -> None:
    """Sign in through the login form, as a user would."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ui/ (kept by CI as an artifact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
