"""Stage templates and resource types in the browser and over plain HTTP: the built-ins
read-only, a tenant's own created, edited and deleted, bad input under its field."""

from __future__ import annotations

from typing import Any

from support.live_up import LiveUp
from support.ui import screenshot, signed_in_client


def test_the_builtin_templates_are_listed_and_read_only(admin_page: Any, ui_up: LiveUp
                                                        ) -> None:
    admin_page.goto(f"{ui_up.url}/templates")
    row = admin_page.locator('#catalog-list tr[data-name="shell"]')
    assert "built-in" in row.inner_text()
    screenshot(admin_page, "templates")
    row.locator("a").first.click()
    admin_page.wait_for_url(f"{ui_up.url}/templates/shell")
    assert admin_page.locator("#arguments").inner_text().count("image") >= 1
    assert "busybox:1.36" in admin_page.locator("#arguments").inner_text()
    assert "kind: Stage" in admin_page.locator("#manifest").inner_text()
    assert admin_page.locator("text=Edit").count() == 0
    screenshot(admin_page, "template")


def test_a_builtin_template_cannot_be_edited_or_deleted(ui_up: LiveUp) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        assert client.get("/templates/shell/edit").status_code == 403
        refused = client.post("/templates/shell", data={
            "csrf": client.csrf, "spec": "pod: {spec: {containers: []}}"})
        assert refused.status_code == 403
        assert "read-only" in refused.text
        assert client.post("/templates/shell/delete",
                           data={"csrf": client.csrf}).status_code == 403
        assert client.get("/templates/shell").status_code == 200


def test_a_tenant_template_is_created_listed_edited_and_deleted(context: Any, ui_up: LiveUp,
                                                                tenant: tuple[str, str]
                                                                ) -> None:
    from support.ui import browser_sign_in

    page = context.new_page()
    browser_sign_in(page, ui_up.url, tenant[1])
    page.goto(f"{ui_up.url}/templates/new")
    page.fill("input[name=name]", "lint")
    page.fill("input[name=alias]", "Lint <b>it</b>")
    page.click("form.admin-form button[type=submit]")
    page.wait_for_url(f"{ui_up.url}/templates/lint")
    assert page.locator("h1").inner_text().startswith("Lint <b>it</b>")
    page.goto(f"{ui_up.url}/templates")
    assert page.locator('#catalog-list tr[data-name="lint"]').inner_text().count("tenant") == 1
    page.goto(f"{ui_up.url}/templates/lint/edit")
    page.fill("textarea[name=spec]", page.input_value("textarea[name=spec]")
              .replace("alpine:3.20", "alpine:3.21"))
    page.click("form.admin-form button[type=submit]")
    page.wait_for_url(f"{ui_up.url}/templates/lint")
    assert "alpine:3.21" in page.locator("#arguments").inner_text()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("text=Delete")
    page.wait_for_url(f"{ui_up.url}/templates")
    assert page.locator('#catalog-list tr[data-name="lint"]').count() == 0


def test_bad_template_input_is_shown_under_its_field(ui_up: LiveUp) -> None:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        bad_yaml = client.post("/templates", data={"csrf": client.csrf, "name": "tbad",
                                                   "spec": "pod: [unclosed"})
        assert bad_yaml.status_code == 422
        assert 'id="err-spec"' in bad_yaml.text and "not valid YAML" in bad_yaml.text
        bad_name = client.post("/templates", data={"csrf": client.csrf, "name": "Bad Name",
                                                   "spec": "pod: {spec: {containers: []}}"})
        assert bad_name.status_code == 422
        assert 'id="err-name"' in bad_name.text
        bad_spec = client.post("/templates", data={"csrf": client.csrf, "name": "tbad2",
                                                   "spec": "pod: {spec: 3}"})
        assert bad_spec.status_code == 422, bad_spec.text
        assert "Traceback" not in bad_spec.text


def test_resource_types_show_their_resolver_and_operations(admin_page: Any, ui_up: LiveUp
                                                           ) -> None:
    admin_page.goto(f"{ui_up.url}/resourcetypes")
    row = admin_page.locator('#catalog-list tr[data-name="git"]')
    assert "pull" in row.inner_text()
    screenshot(admin_page, "resourcetypes")
    admin_page.goto(f"{ui_up.url}/resourcetypes/image")
    assert "push" in admin_page.locator(".facts").inner_text()
    assert "REGISTRY" in admin_page.locator("#parameters").inner_text()
