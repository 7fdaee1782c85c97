"""The chart's metrics: the engine's metrics port and Service, and the optional
ServiceMonitor that scrapes the server and the engine."""

from __future__ import annotations

import kubernetes_validate
import pytest

from .chart import render_chart
from .test_manifests import K8S_VERSION, deployment, option, plain_objects


def service(objects: list[dict], name: str) -> dict:
    return next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == name)


@pytest.mark.parametrize("source", ["plain", "chart"])
def test_the_engine_serves_metrics_on_a_named_port_behind_a_service(source):
    objects = plain_objects() if source == "plain" else render_chart()
    container = deployment(objects, "engine")["spec"]["template"]["spec"]["containers"][0]
    assert option(container["args"], "--metrics-port") == "9090"
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090}]
    engine = service(objects, "cyclone-engine")
    assert engine["spec"]["ports"] == [{"name": "metrics", "port": 9090,
                                        "targetPort": "metrics"}]
    pod_labels = deployment(objects, "engine")["spec"]["template"]["metadata"]["labels"]
    assert engine["spec"]["selector"].items() <= pod_labels.items()
    assert not [o for o in objects if o["kind"] == "ServiceMonitor"]


def test_the_service_monitor_scrapes_the_server_and_engine_ports():
    objects = render_chart({"metrics": {"port": 9464, "serviceMonitor": {
        "enabled": True, "interval": "15s"}}}, name="ci", namespace="tools")
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert len(monitors) == 1
    monitor = monitors[0]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (monitor["metadata"]["name"], monitor["metadata"]["namespace"]) == ("ci", "tools")
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "cyclone", "app.kubernetes.io/instance": "ci"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["tools"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s",
         "bearerTokenSecret": {"name": "cyclone-admin-token", "key": "token"}},
        {"port": "metrics", "path": "/metrics", "interval": "15s"},
    ]
    selected = [o for o in objects if o["kind"] == "Service" and
                monitor["spec"]["selector"]["matchLabels"].items()
                <= o["metadata"]["labels"].items()]
    ports = {s["metadata"]["name"]: {p["name"] for p in s["spec"]["ports"]} for s in selected}
    assert ports == {"ci-server": {"http"}, "ci-engine": {"metrics"}}
    container = deployment(objects, "engine")["spec"]["template"]["spec"]["containers"][0]
    assert option(container["args"], "--metrics-port") == "9464"
    assert container["ports"][0]["containerPort"] == 9464
    assert service(objects, "ci-engine")["spec"]["ports"][0]["port"] == 9464
    for doc in objects:
        if doc["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
