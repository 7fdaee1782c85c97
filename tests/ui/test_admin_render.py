"""The admin templates render for empty, normal and large data, escape tenant text, and
never carry a credential value."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from cyclone.api.tenant import POD_FEATURES
from cyclone.engine.core.tenancy import OPENED_PREFIX
from cyclone.server.builtins import builtin_resource_types, builtin_stage_templates
from cyclone.server.integration_records import redact
from cyclone.ui.pages.admin_clusters import execution_cluster_rows
from cyclone.ui.pages.admin_connection import Outcome
from cyclone.ui.pages.admin_forms import SOURCE_FIELDS, FormValues, form_values, input_name
from cyclone.ui.pages.admin_integrations import summary
from cyclone.ui.pages.admin_templates import RESOURCE_TYPE_PAGES, TEMPLATES, _manifest, _row
from cyclone.ui.templating import render

EVIL = "<script>alert(1)</script>"


def _request(path: str, admin: bool = True) -> Request:
    request = Request({"type": "http", "method": "GET", "path": path, "query_string": b"",
                       "headers": [], "server": ("test", 80), "scheme": "http"})
    request.state.ui_session = SimpleNamespace(admin=admin, tenant="t1", csrf="c" * 20)
    return request


def _html(template: str, context: dict, path: str = "/x", admin: bool = True) -> str:
    response = render(_request(path, admin), template, context)
    assert response.status_code == 200
    return response.body.decode()


def _integration(i: int, kind: str = "SCM") -> dict:
    sources = {"SCM": {"scm": {"type": "GitHub", "server": f"https://s{i}.example",
                               "token": f"SECRET-{i}"}},
               "Cluster": {"cluster": {"credential": {"server": "https://k", "bearerToken":
                                                      f"SECRET-{i}"}, "isWorkerCluster": True}},
               "General": {"general": [{"name": f"{EVIL}{i}", "value": f"SECRET-{i}"}]}}
    return {"metadata": {"name": f"i{i}", "annotations": {"cyclone.dev/alias": EVIL}},
            "spec": redact({"type": kind, **sources[kind]})}


@pytest.mark.parametrize("count", [0, 3, 400])
def test_the_integrations_list_renders_any_size_without_secrets(count: int) -> None:
    kinds = ("SCM", "Cluster", "General")
    rows = [summary(_integration(i, kinds[i % 3])) for i in range(count)]
    html = _html("admin/integrations.html", {"rows": rows,
                                             "testable": lambda k: k in ("SCM", "Cluster")})
    assert "SECRET-" not in html and EVIL not in html
    assert html.count("<tr data-name=") == count
    if not count:
        assert "No integrations" in html


@pytest.mark.parametrize("kind", ["SCM", "DockerRegistry", "SonarQube", "Cluster", "General"])
def test_every_integration_form_renders_credentials_empty(kind: str) -> None:
    stored = form_values(_integration(1, kind)) if kind in ("SCM", "Cluster", "General") \
        else FormValues({}, frozenset())
    fields = [{"name": input_name(kind, f), "field": f} for f in SOURCE_FIELDS[kind]]
    html = _html("admin/integration_form.html", {
        "kind": kind, "types": ("SCM",), "fields": fields, "values": stored.values,
        "stored": stored.stored_secrets, "general": [*stored.general, ("", False)],
        "editing": "i1", "problems": {"name": EVIL}})
    assert "SECRET-" not in html and EVIL not in html
    assert 'id="err-name"' in html
    if kind in ("SCM", "Cluster"):
        assert 'placeholder="unchanged"' in html or "unchanged (stored" in html


def test_the_connection_outcome_is_escaped() -> None:
    html = _html("admin/connection.html", {"outcome": Outcome(False, EVIL)})
    assert EVIL not in html and 'data-ok="false"' in html


@pytest.mark.parametrize("catalog", [TEMPLATES, RESOURCE_TYPE_PAGES])
@pytest.mark.parametrize("count", [0, 1, 500])
def test_the_catalog_pages_render_any_size(catalog, count: int) -> None:
    builtins = builtin_stage_templates() if catalog is TEMPLATES else builtin_resource_types()
    objects = [builtins[i % len(builtins)] for i in range(count)]
    html = _html("admin/templates.html", {"catalog": catalog,
                                          "rows": [_row(o) for o in objects]})
    assert html.count("<tr data-name=") == count
    for obj in builtins[:1]:
        page = _html("admin/template.html", {"catalog": catalog, "item": _row(obj),
                                             "manifest": _manifest(obj)})
        assert "read-only" in page


def test_the_tenant_pages_render_and_escape() -> None:
    tenant = {"metadata": {"name": "t1", "creationTimestamp": "2026-01-01T00:00:00Z"},
              "spec": {"persistentVolumeClaim": {"size": "1Gi", "storageClass": ""},
                       "resourceQuota": {"cpu": "1"}, "allowedPodFeatures": ["hostPath"],
                       "allowLocalAddresses": False}}
    assert "No tenants" in _html("admin/tenants.html", {"tenants": []})
    many = _html("admin/tenants.html", {"tenants": [tenant] * 300})
    assert many.count("<tr data-name=") == 300
    tokens = [{"id": f"{i:08x}", "description": EVIL, "createdAt": "2026-01-01T00:00:00Z"}
              for i in range(200)]
    page = _html("admin/tenant.html", {"tenant": tenant, "spec": tenant["spec"],
                                       "tokens": tokens, "issued": None})
    assert EVIL not in page and page.count("data-token=") == 200
    assert "issued-token" not in page
    form = _html("admin/tenant_form.html", {"values": {}, "features": [],
                                            "all_features": POD_FEATURES, "editing": "",
                                            "problems": {"quota": EVIL}})
    assert EVIL not in form and 'id="err-quota"' in form


def test_a_tenant_sees_only_its_own_openings_of_an_execution_cluster() -> None:
    def ec(name: str, openings: dict[str, str]) -> dict:
        return {"metadata": {"name": name, "annotations": {
            OPENED_PREFIX + t: f'[{{"integration": "{i}", "namespace": "ns-{t}", '
                                       f'"pvc": "p"}}]' for t, i in openings.items()}},
                "spec": {"credential": {"server": "https://k", "bearerToken": "SECRET"}},
                "status": {"phase": "Connected"}}

    items = [ec("shared", {"t1": "mine", "t2": "theirs"}), ec("other", {"t2": "x"})]
    mine = execution_cluster_rows(items, "t1", admin=False)
    assert [r["name"] for r in mine] == ["shared"]
    assert mine[0]["openings"] == [("t1", "mine", "ns-t1")]
    assert len(execution_cluster_rows(items, "t1", admin=True)) == 2
    html = _html("admin/clusters.html", {"clusters": mine, "integrations": [],
                                         "runs_in": {"cluster": "shared", "namespace": "n"}})
    assert "SECRET" not in html and "t2" not in html


@pytest.mark.parametrize("items", [0, 2, 500])
def test_an_integration_page_lists_its_fields_and_never_a_value(items: int) -> None:
    stored = {"metadata": {"name": "g", "annotations": {"cyclone.dev/alias": EVIL}},
              "spec": redact({"type": "General", "general": [
                  {"name": f"N{i}", "value": f"SECRET-{i}"} for i in range(items)]})}
    shown = form_values(stored)
    html = _html("admin/integration.html", {
        "row": summary(stored), "facts": [], "general": shown.general, "description": EVIL,
        "testable": False, "placement": None})
    assert "SECRET-" not in html and EVIL not in html
    assert html.count("(stored, write-only)") == items
