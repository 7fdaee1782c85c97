"""The frame every page shares, in a real Chromium: sign-in, theme, no script the policy
blocks, and the API docs pages working offline."""

from __future__ import annotations

from typing import Any

from support.live_up import LiveUp
from support.ui import browser_sign_in, screenshot


def test_signing_in_through_the_form_lands_on_the_overview(context: Any, ui_up: LiveUp
                                                            ) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{ui_up.url}/")
    assert page.url.endswith("/login")
    browser_sign_in(page, ui_up.url, ui_up.token)
    assert page.locator("h1").first.inner_text() == "Overview"
    page.wait_for_selector("#tenant-select")
    assert page.locator("#tenant-select").input_value() == "system"
    screenshot(page, "overview")
    assert errors == []


def test_the_theme_toggle_cycles_system_light_dark_and_persists(admin_page: Any,
                                                                 ui_up: LiveUp) -> None:
    html = admin_page.locator("html")
    assert html.get_attribute("data-theme") == "system"
    admin_page.click("[data-theme-toggle]")
    assert html.get_attribute("data-theme") == "light"
    admin_page.click("[data-theme-toggle]")
    assert html.get_attribute("data-theme") == "dark"
    admin_page.reload()
    assert admin_page.locator("html").get_attribute("data-theme") == "dark"
    screenshot(admin_page, "overview-dark")


def test_the_swagger_docs_render_offline_with_authorize(context: Any, ui_up: LiveUp) -> None:
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{ui_up.url}/docs")
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator("button.authorize").count() == 1
    page.click("button.authorize")
    page.fill(".auth-container input", "cyt.probe.t1.secret-value")
    page.click(".auth-btn-wrapper button.authorize")
    assert "secret-value" not in page.evaluate("JSON.stringify(localStorage)")
    assert all(url.startswith(ui_up.url) or url.startswith("data:") for url in requests), requests
    screenshot(page, "api-docs")


def test_the_redoc_page_renders_offline(context: Any, ui_up: LiveUp) -> None:
    """ReDoc's bundle always asks its CDN for a logo; the page's policy blocks it, so no
    request leaves the site."""
    page = context.new_page()
    loaded: list[str] = []
    page.on("requestfinished", lambda request: loaded.append(request.url))
    page.goto(f"{ui_up.url}/redoc")
    page.wait_for_selector(".api-content", timeout=20000)
    assert page.locator("text=Run the workflow").count() > 0
    assert all(url.startswith(ui_up.url) or url.startswith(("data:", "blob:"))
               for url in loaded), loaded
