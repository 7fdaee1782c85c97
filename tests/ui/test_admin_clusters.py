"""The clusters page: where a tenant's runs execute, the execution clusters' state, and a
Cluster integration opened and closed from the page."""

from __future__ import annotations

from typing import Any

from support.live_up import LiveUp
from support.ui import browser_sign_in, screenshot, signed_in_client


def test_the_clusters_page_shows_where_runs_execute(admin_page: Any, ui_up: LiveUp,
                                                    tenant: tuple[str, str]) -> None:
    admin_page.goto(f"{ui_up.url}/clusters")
    assert "cyclone-control-cluster" in admin_page.locator("#runs-in").inner_text()
    screenshot(admin_page, "clusters")
    with signed_in_client(ui_up.url, tenant[1]) as client:
        page = client.get("/clusters")
        assert page.status_code == 200
        assert f"cyclone-{tenant[0]}" in page.text


def test_a_cluster_integration_is_opened_and_closed_from_the_page(context: Any, ui_up: LiveUp,
                                                                  tenant: tuple[str, str]
                                                                  ) -> None:
    name = tenant[0]
    with signed_in_client(ui_up.url, tenant[1]) as client:
        created = client.post("/integrations", data={
            "csrf": client.csrf, "type": "Cluster", "name": "home",
            "cluster.isControlCluster": "on"})
        assert created.status_code == 303, created.text
    page = context.new_page()
    browser_sign_in(page, ui_up.url, tenant[1])
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{ui_up.url}/clusters")
    row = page.locator('#cluster-integrations tr[data-name="home"]')
    assert row.get_attribute("data-open") == "false"
    row.locator("button").click()
    page.wait_for_selector('#cluster-integrations tr[data-name="home"][data-open="true"]')
    assert f"cyclone-{name}-worker" in page.locator("#runs-in").inner_text()
    assert f"{name} via home" in page.locator("#execution-clusters").inner_text()
    screenshot(page, "clusters-opened")
    page.goto(f"{ui_up.url}/integrations/home")
    assert "Test connection" in page.content()
    page.click("#test-connection")
    page.wait_for_selector("#test-result [data-ok=true]")
    page.click("#close-cluster")
    page.wait_for_selector("#open-cluster")
    page.goto(f"{ui_up.url}/clusters")
    assert f"cyclone-{name}-worker" not in page.locator("#runs-in").inner_text()


def test_opening_what_is_not_a_cluster_is_refused_in_one_line(ui_up: LiveUp,
                                                              tenant: tuple[str, str]) -> None:
    with signed_in_client(ui_up.url, tenant[1]) as client:
        client.post("/integrations", data={"csrf": client.csrf, "type": "SonarQube",
                                           "name": "sq", "sonarQube.server": "https://s"})
        refused = client.post("/integrations/sq/open", data={"csrf": client.csrf})
        assert refused.status_code == 400
        assert "integration &#39;sq&#39; is not of type Cluster" in refused.text
        assert "Traceback" not in refused.text


def test_admin_forms_refuse_a_post_without_the_session_csrf(ui_up: LiveUp,
                                                            tenant: tuple[str, str]) -> None:
    with signed_in_client(ui_up.url, tenant[1]) as client:
        for path, data in (("/integrations", {"type": "SonarQube", "name": "forged"}),
                           ("/templates", {"name": "forged", "spec": "pod: {}"}),
                           ("/integrations/sq/delete", {})):
            refused = client.post(path, data={**data, "csrf": "forged"})
            assert refused.status_code == 403, path
        assert client.get("/integrations/forged").status_code == 404
        assert client.get("/templates/forged").status_code == 404
