"""One `cyclone up` (embedded cluster, host runtime) for the UI tests, a real Chromium driven
by Playwright, and pages signed in as the admin or as a tenant.

Each test module uses project names of its own: the instance is shared by the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.live_up import LiveUp, live_up
from support.ui import CHROMIUM, CHROMIUM_ARGS, browser_sign_in, new_tenant
from support.ui_app import backend, served  # noqa: F401  (fixtures for the UI tests)


@pytest.fixture(scope="session")
def ui_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("ui-up")) as instance:
        yield instance


@pytest.fixture(scope="session")
def admin_api(ui_up: LiveUp) -> Iterator[httpx.Client]:
    """The REST API as the admin (base URL is the server root)."""
    with httpx.Client(base_url=ui_up.url, timeout=30,
                      headers={"Authorization": f"Bearer {ui_up.token}"}) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make system-deps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) per test."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def admin_page(context: Any, ui_up: LiveUp) -> Any:
    page = context.new_page()
    browser_sign_in(page, ui_up.url, ui_up.token)
    return page


@pytest.fixture
def tenant(admin_api: httpx.Client) -> tuple[str, str]:
    """A new tenant and its token."""
    return new_tenant(admin_api)
