"""The chart's `settings` values reach `cyclone server` and `cyclone engine` as the options
they are, and parse there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer.main

from cyclone.cli.main import app
from cyclone.components import engine_overrides, load_engine_config, server_settings
from cyclone.engine.core.weburl import run_link

from .chart import REPO, render_chart

TEMPLATE = "https://ci.example.com/{tenant}/{project}/{workflow}/{run}"


def _params(objects: list[dict], component: str) -> dict:
    deployment = next(o for o in objects if o["kind"] == "Deployment"
                      and o["metadata"]["labels"]["app.kubernetes.io/component"] == component)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    command = typer.main.get_command(app).commands[container["args"][0]]  # type: ignore[attr-defined]
    return command.make_context(component, list(container["args"][1:]),
                                default_map=None, auto_envvar_prefix=None,
                                obj=env).params | {"env": env}


def test_chart_settings_reach_the_server_and_the_engine_as_parsed_options(monkeypatch):
    objects = render_chart({"settings": {
        "openControlCluster": "false", "defaultPVCSize": "5Gi", "defaultStorageClass": "fast",
        "defaultQuota": "limits.cpu=2,limits.memory=4Gi", "webURLTemplate": TEMPLATE,
        "notificationEndpoints": "audit=https://audit.example.com/in,ops=http://ops/x"}})
    server = _params(objects, "server")
    monkeypatch.setenv("CYCLONE_OPEN_CONTROL_CLUSTER",
                       server["env"]["CYCLONE_OPEN_CONTROL_CLUSTER"])
    server = _params(objects, "server")
    settings = server_settings(type("Options", (), server)())
    assert settings.open_control_cluster is False
    assert settings.tenant_defaults.pvc_size == "5Gi"
    assert settings.tenant_defaults.storage_class == "fast"
    assert settings.tenant_defaults.quota == {"limits.cpu": "2", "limits.memory": "4Gi"}
    engine = _params(objects, "engine")
    overrides = engine_overrides(engine["web_url_template"],
                                 tuple(engine["notification_endpoint"]))
    assert overrides == {"web_url_template": TEMPLATE, "notification_endpoints": [
        {"name": "audit", "url": "https://audit.example.com/in"},
        {"name": "ops", "url": "http://ops/x"}]}
    run = {"metadata": {"name": "r", "namespace": "cyclone-t",
                        "labels": {"project.cyclone.dev/name": "p",
                                   "workflow.cyclone.dev/name": "w"}}}
    assert run_link(settings.web_url_template, "http://unused", run) == \
        run_link(overrides["web_url_template"], "http://unused", run) == \
        "https://ci.example.com/t/p/w/r"


def test_chart_defaults_open_the_control_cluster_and_set_no_engine_override(monkeypatch):
    objects = render_chart()
    server = _params(objects, "server")
    monkeypatch.setenv("CYCLONE_OPEN_CONTROL_CLUSTER",
                       server["env"]["CYCLONE_OPEN_CONTROL_CLUSTER"])
    server = _params(objects, "server")
    assert server["open_control_cluster"] is True
    assert server["default_pvc_size"] == "10Gi" and server["default_quota"] == ""
    engine = _params(objects, "engine")
    assert engine_overrides(engine["web_url_template"] or None,
                            tuple(engine["notification_endpoint"])) == {}


def test_the_gc_image_value_reaches_the_engine_config_and_the_server(tmp_path):
    image = "registry.example/cyclone/toolbox:0.1.0"
    objects = render_chart({"settings": {"gcImage": image}})
    config_map = next(o for o in objects if o["kind"] == "ConfigMap"
                      and o["metadata"]["labels"]["app.kubernetes.io/component"] == "engine")
    path = tmp_path / "engine.yaml"
    path.write_text(config_map["data"]["engine.yaml"])
    assert load_engine_config(str(path)).gc_image == image
    server = _params(objects, "server")
    assert server["gc_image"] == image
    assert server_settings(type("Options", (), server)()).gc_image == image


@pytest.mark.parametrize(("command", "args", "message"), [
    ("server", ["--web-url-template", "https://ci/{proj}/{run}"],
     "unknown placeholder {proj} (known: {tenant}, {project}, {workflow}, {run})"),
    ("server", ["--default-pvc-size", "big"], "default PVC size 'big' is not a quantity"),
    ("engine", ["--notification-endpoint", "audit"], "'audit' is not NAME=URL"),
])
def test_bad_settings_are_refused_at_start_with_one_line(tmp_path, command, args, message):
    done = subprocess.run(
        [sys.executable, "-m", "cyclone.cli.main", command, "--embedded",
         str(tmp_path / "c.db"), "--data-dir" if command == "server" else "--log-level",
         str(tmp_path / "data") if command == "server" else "info", *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: cyclone {command}: ") and message in line
    assert not (tmp_path / "c.db").exists()
