"""The server settings of Cyclone v1.2 as pure decisions: the run's web link, the tenant
defaults, the notification endpoints and the tenant that opened no cluster."""

from __future__ import annotations

import pytest

from cyclone.api import keys
from cyclone.api.tenant import Tenant
from cyclone.engine.core.serversettings import (
    TenantDefaults,
    no_cluster_problem,
    parse_endpoints,
    parse_quota,
)
from cyclone.engine.core.weburl import run_link, template_problem, web_url
from cyclone.kube.quantity import parse_quantity

RUN = {"metadata": {"name": "ci 1", "namespace": "cyclone-acme",
                    "labels": {keys.LABEL_PROJECT: "web/app", keys.LABEL_WORKFLOW: "build"}},
       "spec": {"workflowRef": {"name": "ignored"}}}


def test_without_a_template_the_link_is_the_ui_run_page_under_the_server_url():
    assert run_link(None, "http://ci.local:7099/", RUN) == \
        "http://ci.local:7099/projects/web%2Fapp/workflows/build/runs/ci%201"


def test_a_template_places_each_name_percent_encoded():
    template = "https://ci.example.com/t/{tenant}/p/{project}/w/{workflow}/r/{run}?x=1"
    assert run_link(template, "http://ignored", RUN) == \
        "https://ci.example.com/t/acme/p/web%2Fapp/w/build/r/ci%201?x=1"
    assert web_url("https://x/{run}", tenant="", project="", workflow="", run="a&b") == \
        "https://x/a%26b"


@pytest.mark.parametrize("template, named", [
    ("https://x/{proj}", "unknown placeholder {proj}"),
    ("https://x/{run.name}", "unknown placeholder {run.name}"),
    ("https://x/{run!r}", "unknown placeholder {run!r}"),
    ("https://x/{}", "unknown placeholder {}"),
    ("https://x/{run", "expected '}'"),
    ("ftp://x/{run}", "must start with http:// or https://"),
])
def test_a_template_that_cannot_make_links_is_refused_in_one_line(template, named):
    problem = template_problem(template)
    assert problem is not None and named in problem and "\n" not in problem


def test_a_template_with_known_placeholders_and_literal_braces_is_accepted():
    assert template_problem("https://x/{tenant}/{project}/{workflow}/{run}/{{raw}}") is None


def test_default_quota_is_read_from_resource_equals_quantity_pairs():
    assert parse_quota("", parse_quantity) == {}
    assert parse_quota(" limits.cpu=2, requests.memory=1Gi ,", parse_quantity) == {
        "limits.cpu": "2", "requests.memory": "1Gi"}
    for bad, named in (("cpu", "not resource=quantity"), ("cpu=abc", "cpu: invalid quantity"),
                       ("cpu=-1", "negative")):
        with pytest.raises(ValueError, match=named):
            parse_quota(bad, parse_quantity)


def test_notification_endpoints_are_named_http_urls_given_once():
    assert parse_endpoints(["audit=http://127.0.0.1:9/a", "ops=https://o/x,b=http://b/"]) == [
        {"name": "audit", "url": "http://127.0.0.1:9/a"},
        {"name": "ops", "url": "https://o/x"}, {"name": "b", "url": "http://b/"}]
    for bad, named in ((["http://x"], "not NAME=URL"), (["a=file:///etc"], "not an http"),
                       (["a=http://x", "a=http://y"], "given twice")):
        with pytest.raises(ValueError, match=named):
            parse_endpoints(bad)


def _spec_of(body: dict):
    tenant = Tenant.model_validate(body)
    given = tenant.spec.model_fields_set if "spec" in tenant.model_fields_set else set()
    pvc = tenant.spec.persistent_volume_claim.model_fields_set \
        if "persistent_volume_claim" in given else set()
    return TenantDefaults("5Gi", "fast", {"limits.cpu": "2"}).apply(tenant.spec, given, pvc)


def test_tenant_defaults_fill_only_what_the_request_left_out():
    assert _spec_of({"metadata": {"name": "a"}}).stored() == {
        "persistentVolumeClaim": {"storageClass": "fast", "size": "5Gi"},
        "resourceQuota": {"limits.cpu": "2"}, "allowedPodFeatures": [],
        "allowLocalAddresses": False}
    given = _spec_of({"metadata": {"name": "a"}, "spec": {
        "persistentVolumeClaim": {"size": "1Gi"}, "resourceQuota": {}}}).stored()
    assert given["persistentVolumeClaim"] == {"storageClass": "fast", "size": "1Gi"}
    assert given["resourceQuota"] == {}
    both = _spec_of({"metadata": {"name": "a"}, "spec": {
        "persistentVolumeClaim": {"size": "2Gi", "storageClass": ""}}}).stored()
    assert both["persistentVolumeClaim"] == {"storageClass": "", "size": "2Gi"}


def test_only_a_tenant_that_opened_no_cluster_and_would_run_at_home_is_stopped():
    problem = no_cluster_problem("acme", True, False, True)
    assert problem is not None and "'acme' has opened no cluster" in problem
    assert "opencluster" in problem and "open-cluster" in problem
    assert no_cluster_problem("acme", True, True, True) is None
    assert no_cluster_problem("acme", True, False, False) is None
    assert no_cluster_problem("acme", False, False, True) is None
    assert no_cluster_problem(keys.DEFAULT_TENANT, True, False, True) is None
