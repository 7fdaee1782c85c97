"""Tenants and their tokens in the browser (the admin's pages only): create, edit, delete;
a token issued and shown once, used to sign in, revoked, and the session it opened ends."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from support.live_up import LiveUp
from support.ui import browser_sign_in, screenshot, signed_in_client


def test_a_token_issued_on_the_page_signs_in_until_it_is_revoked(admin_page: Any,
                                                                 browser: Any,
                                                                 ui_up: LiveUp) -> None:
    name = f"uitn{secrets.token_hex(3)}"
    admin_page.goto(f"{ui_up.url}/tenants/new")
    admin_page.fill("input[name=name]", name)
    admin_page.fill("input[name='pvc.size']", "2Gi")
    admin_page.fill("textarea[name=quota]", "limits.cpu=2\nlimits.memory=4Gi")
    admin_page.check("input[name=features][value=hostPath]")
    admin_page.click("form.admin-form button[type=submit]")
    admin_page.wait_for_url(f"{ui_up.url}/tenants/{name}")
    facts = admin_page.locator("#tenant-facts").inner_text()
    assert "2Gi" in facts and "limits.cpu=2" in facts and "hostPath" in facts

    admin_page.fill("#f-description", "laptop <script>")
    admin_page.click("#issue-token")
    admin_page.wait_for_selector("#issued-token")
    token = admin_page.locator("#token-value").inner_text().strip()
    assert token.startswith(f"cyt.{name}.")
    assert admin_page.locator("#copy-token").get_attribute("data-copy") == token
    assert "laptop <script>" in admin_page.locator("#tokens").inner_text()
    screenshot(admin_page, "tenant-token-issued")
    admin_page.goto(f"{ui_up.url}/tenants/{name}")
    assert token not in admin_page.content()
    screenshot(admin_page, "tenant")

    tenant_context = browser.new_context()
    try:
        tenant_page = tenant_context.new_page()
        browser_sign_in(tenant_page, ui_up.url, token)
        assert tenant_page.locator(".tenant-name").inner_text() == name
        admin_page.on("dialog", lambda dialog: dialog.accept())
        admin_page.locator("#tokens tr", has_text="laptop").locator("button").click()
        admin_page.wait_for_load_state()
        assert admin_page.locator("#tokens").count() == 0
        tenant_page.goto(f"{ui_up.url}/integrations")
        assert tenant_page.url.startswith(f"{ui_up.url}/login")
    finally:
        tenant_context.close()

    admin_page.goto(f"{ui_up.url}/tenants")
    assert admin_page.locator(f'#tenants tr[data-name="{name}"]').count() == 1
    screenshot(admin_page, "tenants")
    admin_page.goto(f"{ui_up.url}/tenants/{name}")
    admin_page.click("#delete-tenant")
    admin_page.wait_for_url(f"{ui_up.url}/tenants")
    assert admin_page.locator(f'#tenants tr[data-name="{name}"]').count() == 0


def test_editing_a_tenant_changes_its_quota_and_keeps_its_name(ui_up: LiveUp,
                                                               admin_api: httpx.Client) -> None:
    name = f"uitn{secrets.token_hex(3)}"
    with signed_in_client(ui_up.url, ui_up.token) as client:
        created = client.post("/tenants", data={"csrf": client.csrf, "name": name,
                                                "pvc.size": "1Gi"})
        assert created.status_code == 303, created.text
        form = client.get(f"/tenants/{name}/edit").text
        assert 'value="1Gi"' in form
        saved = client.post(f"/tenants/{name}", data={
            "csrf": client.csrf, "pvc.size": "3Gi", "quota": "requests.cpu=500m",
            "allowLocalAddresses": "on"})
        assert saved.status_code == 303, saved.text
    spec = admin_api.get(f"/apis/v1alpha1/tenants/{name}").json()["spec"]
    assert spec["persistentVolumeClaim"]["size"] == "3Gi"
    assert spec["resourceQuota"] == {"requests.cpu": "500m"}
    assert spec["allowLocalAddresses"] is True


def test_bad_tenant_values_are_shown_under_their_fields(ui_up: LiveUp) -> None:
    cases = [({"name": "Bad_Name"}, "err-name"),
             ({"name": "uitnq", "quota": "cpu"}, "err-quota"),
             ({"name": "uitnq", "quota": "cpu=lots"}, "err-quota"),
             ({"name": "uitnq", "pvc.size": "huge"}, "err-pvc-size")]
    with signed_in_client(ui_up.url, ui_up.token) as client:
        for data, field in cases:
            answer = client.post("/tenants", data={"csrf": client.csrf, **data})
            assert answer.status_code == 422, (data, answer.status_code)
            assert f'id="{field}"' in answer.text, data
            assert "Traceback" not in answer.text
        taken = client.post("/tenants", data={"csrf": client.csrf, "name": "system"})
        assert taken.status_code == 409 and "already exists" in taken.text
        too_long = client.post("/tenants/system/tokens", data={"csrf": client.csrf,
                                                               "description": "x" * 300})
        assert too_long.status_code == 422 and 'id="err-description"' in too_long.text


def test_a_tenant_session_finds_no_tenant_pages(ui_up: LiveUp, tenant: tuple[str, str]
                                                ) -> None:
    name, token = tenant
    with signed_in_client(ui_up.url, token) as client:
        overview = client.get("/").text
        assert 'href="/tenants"' not in overview
        for path in ("/tenants", "/tenants/new", f"/tenants/{name}", "/tenants/system",
                     f"/tenants/{name}/edit"):
            assert client.get(path).status_code == 404, path
        for path in ("/tenants", f"/tenants/{name}/tokens", f"/tenants/{name}/delete"):
            refused = client.post(path, data={"csrf": client.csrf, "name": "x"})
            assert refused.status_code == 404, path
    with signed_in_client(ui_up.url, ui_up.token) as admin:
        assert len(admin.get(f"/tenants/{name}").text) > 0

