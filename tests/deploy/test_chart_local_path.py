"""The chart's local-path provisioner (`localPathProvisioner`, off by default) and the
engine's pending timeout (`engine.podPendingTimeoutSeconds`)."""

from __future__ import annotations

import kubernetes_validate
import typer.main

from cyclone.cli.main import app

from .chart import render_chart
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


def test_the_pending_timeout_reaches_the_engine_and_it_may_read_claims():
    objects = render_chart({"engine": {"podPendingTimeoutSeconds": 90}})
    [engine] = [o for o in _of(objects, "engine") if o["kind"] == "Deployment"]
    assert _params(engine)["pod_pending_timeout"] == 90
    [role] = [o for o in _of(objects, "engine") if o["kind"] == "ClusterRole"]
    assert {"resources": ["persistentvolumeclaims"], "verbs": ["get"],
            "apiGroups": [""]} in role["rules"]
