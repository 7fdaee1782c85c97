"""The chart's local-path provisioner (`localPathProvisioner`, off by default) and the
engine's pending timeout (`engine.podPendingTimeoutSeconds`, the engine ConfigMap's
`pod_pending_timeout_seconds`, which no flag overrides)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import typer.main

from cyclone.cli.main import app
from cyclone.components import load_engine_config

from .chart import documents, plain_manifest_files, render_chart
from .test_manifests import K8S_VERSION

COMPONENT = "app.kubernetes.io/component"


def _of(objects: list[dict], component: str) -> list[dict]:
    return [o for o in objects if (o["metadata"].get("labels") or {}).get(COMPONENT) == component]


def _params(deployment: dict) -> dict:
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    command = typer.main.get_command(app).commands[args[0]]  # type: ignore[attr-defined]
    return command.make_context(args[0], list(args[1:])).params


def test_the_provisioner_is_not_deployed_by_default():
    assert _of(render_chart(), "local-path-provisioner") == []


def test_an_enabled_provisioner_runs_with_its_path_and_may_only_manage_volumes():
    objects = render_chart({"localPathProvisioner": {"enabled": True, "path": "/srv/volumes"}},
                           name="ci", namespace="tools")
    mine = _of(objects, "local-path-provisioner")
    for doc in mine:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    [deployment] = [o for o in mine if o["kind"] == "Deployment"]
    assert _params(deployment)["local_path_dir"] == "/srv/volumes"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == \
        "ci-local-path-provisioner"
    [role] = [o for o in mine if o["kind"] == "ClusterRole"]
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"]
               for verb in rule["verbs"]}
    assert granted == {
        ("persistentvolumeclaims", "get"), ("persistentvolumeclaims", "list"),
        ("persistentvolumeclaims", "watch"), ("persistentvolumes", "get"),
        ("persistentvolumes", "list"), ("persistentvolumes", "watch"),
        ("persistentvolumes", "create"), ("persistentvolumes", "delete")}
    [binding] = [o for o in mine if o["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": "ci-local-path-provisioner", "namespace": "tools"}]


def _engine_config(objects: list[dict], tmp_path: Path):
    [config_map] = [o for o in _of(objects, "engine") if o["kind"] == "ConfigMap"]
    path = tmp_path / "engine.yaml"
    path.write_text(config_map["data"]["engine.yaml"])
    return load_engine_config(str(path))


def test_the_pending_timeout_reaches_the_engine_and_it_may_read_claims(tmp_path):
    objects = render_chart({"engine": {"podPendingTimeoutSeconds": 90}})
    [engine] = [o for o in _of(objects, "engine") if o["kind"] == "Deployment"]
    assert _params(engine)["pod_pending_timeout"] is None
    assert _engine_config(objects, tmp_path).pod_pending_timeout_seconds == 90
    [role] = [o for o in _of(objects, "engine") if o["kind"] == "ClusterRole"]
    assert {"resources": ["persistentvolumeclaims"], "verbs": ["get"],
            "apiGroups": [""]} in role["rules"]


def test_the_plain_engine_takes_the_pending_timeout_from_its_config_map_alone(tmp_path):
    objects = [doc for path in plain_manifest_files() for doc in documents(path)]
    [engine] = [o for o in _of(objects, "engine") if o["kind"] == "Deployment"]
    assert _params(engine)["pod_pending_timeout"] is None
    assert _engine_config(objects, tmp_path).pod_pending_timeout_seconds == 300
