"""deploy/: every manifest is valid Kubernetes 1.30, the chart (rendered by the real
`helm template`) renders to the same objects, RBAC stays least-privilege, and the
Deployments run commands the image really has."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import typer.main
import yaml

from cyclone.api import keys
from cyclone.cli.main import app
from cyclone.kube.leader import LeaseTimings

from .chart import (
    CHART,
    DEPLOY,
    REPO,
    by_identity,
    chart_values,
    documents,
    plain_manifest_files,
    render_chart,
    without_helm_bookkeeping,
)

K8S_VERSION = "1.30"
COMPONENT = "app.kubernetes.io/component"


def plain_objects() -> list[dict]:
    return [doc for path in plain_manifest_files() for doc in documents(path)]


def deployment(objects: list[dict], component: str) -> dict:
    return next(o for o in objects
                if o["kind"] == "Deployment" and o["metadata"]["labels"][COMPONENT] == component)


def role(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def option(args: list[str], name: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"{name}="))


@pytest.mark.parametrize("path", plain_manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_validates_strictly(path):
    docs = documents(path)
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_deploy_covers_what_running_on_kubernetes_needs():
    kinds = {(o["kind"], o["metadata"]["name"]) for o in plain_objects()}
    for needed in [
        ("Namespace", "cyclone"), ("ServiceAccount", "cyclone-engine"),
        ("ServiceAccount", "cyclone-server"), ("ClusterRole", "cyclone-engine"),
        ("ClusterRole", "cyclone-server"), ("ClusterRoleBinding", "cyclone-engine"),
        ("ClusterRoleBinding", "cyclone-server"), ("Role", "cyclone-engine"),
        ("RoleBinding", "cyclone-engine"), ("Deployment", "cyclone-engine"),
        ("Deployment", "cyclone-server"), ("Service", "cyclone-server"),
        ("PersistentVolumeClaim", "cyclone-server-data"),
    ]:
        assert needed in kinds
    assert any(o["kind"] == "CustomResourceDefinition" for o in plain_objects())


def test_chart_metadata_and_values_parse():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "cyclone"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    assert chart_values()["engine"]["replicas"] == 2


def test_rendered_chart_validates_strictly():
    for doc in render_chart():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_chart_with_defaults_renders_the_plain_manifests():
    plain = by_identity([o for o in plain_objects()
                         if o["kind"] not in ("Namespace", "CustomResourceDefinition")])
    assert by_identity(without_helm_bookkeeping(render_chart())) == plain


def test_chart_values_reach_the_objects():
    objects = render_chart({
        "image": {"repository": "registry.example/cyclone", "tag": "1.2.3"},
        "engine": {"replicas": 3},
        "server": {"port": 8080},
        "persistence": {"size": "50Gi", "accessMode": "ReadWriteMany"},
        "adminToken": {"secretName": "my-token", "key": "admin"},
    }, name="ci", namespace="tools")
    engine = deployment(objects, "engine")
    server = deployment(objects, "server")
    assert engine["metadata"] == {**engine["metadata"], "name": "ci-engine", "namespace": "tools"}
    assert engine["spec"]["replicas"] == 3
    for item in (engine, server):
        assert item["spec"]["template"]["spec"]["containers"][0]["image"] == \
            "registry.example/cyclone:1.2.3"
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["spec"] == {"accessModes": ["ReadWriteMany"],
                             "resources": {"requests": {"storage": "50Gi"}}}
    volumes = {v["name"]: v for v in server["spec"]["template"]["spec"]["volumes"]}
    assert "admin-token" not in volumes
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "ci-server-data"
    args = server["spec"]["template"]["spec"]["containers"][0]["args"]
    assert option(args, "--admin-token-secret") == "my-token:admin"
    assert option(args, "--server-url") == "http://ci-server.tools.svc:8080"
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    assert yaml.safe_load(config["data"]["engine.yaml"]) == {
        "callback_base_url": "http://ci-server.tools.svc:8080", "system_namespace": "tools",
        "pod_pending_timeout_seconds": 300, "gc_delay_seconds": 300,
        "gc_image": "cyclone/toolbox:0.1.0"}
    binding = role(objects, "ClusterRoleBinding", "ci-engine")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ci-engine",
                                    "namespace": "tools"}]


@pytest.mark.parametrize("source", ["plain", "chart"])
def test_rbac_is_least_privilege(source):
    objects = plain_objects() if source == "plain" else render_chart()
    rules = [rule for o in objects if o["kind"] in ("ClusterRole", "Role")
             for rule in o["rules"]]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
    engine = role(objects, "ClusterRole", "cyclone-engine")["rules"]
    granted = {(group, resource, verb) for rule in engine for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert ("cyclone.dev", "workflows", "get") in granted
    assert not {g for g in granted if g[2] == "delete"
                and g[1] not in ("pods", "workflowruns", "secrets")}
    assert ("", "secrets", "get") in granted
    # Secrets: read, plus the per-pod Secret of credentials bound from an integration
    # (created beside the pod, owned by it, deleted if the pod cannot be made); never
    # update, and never watch.
    assert {g[2] for g in granted if g[1] == "secrets"} == {
        "get", "list", "create", "patch", "delete"}
    # Namespaces: read and watched (tenant policies come from an informer), never written.
    assert {g for g in granted if g[1] == "namespaces"} == {
        ("", "namespaces", verb) for verb in ("get", "list", "watch")}
    assert not {g for g in granted if g[1] in ("leases", "clusterroles")}
    for name in ("cyclone-engine", "cyclone-server"):
        lease_rules = [r for r in role(objects, "Role", name)["rules"]
                       if r["resources"] == ["leases"]]
        assert {v for r in lease_rules if "resourceNames" not in r for v in r["verbs"]} == \
            {"create"}
        assert [r["resourceNames"] for r in lease_rules if "resourceNames" in r] == [[name]]
    server = role(objects, "ClusterRole", "cyclone-server")["rules"]
    assert not any("nodes" in r["resources"] or "persistentvolumes" in r["resources"]
                   for r in server)


@pytest.mark.parametrize("source", ["plain", "chart"])
def test_engine_runs_two_replicas_with_valid_lease_timings(source):
    objects = plain_objects() if source == "plain" else render_chart()
    engine = deployment(objects, "engine")
    assert engine["spec"]["replicas"] == 2
    container = engine["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "engine"
    LeaseTimings(float(option(args, "--lease-duration")),
                 float(option(args, "--renew-deadline")),
                 float(option(args, "--retry-period")))
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


@pytest.mark.parametrize("component", ["engine", "server"])
def test_deployment_args_are_options_of_the_cyclone_command(component):
    container = deployment(plain_objects(), component)["spec"]["template"]["spec"][
        "containers"][0]
    command = typer.main.get_command(app)
    subcommand = command.commands[container["args"][0]]  # type: ignore[attr-defined]
    context = subcommand.make_context(component, list(container["args"][1:]))
    assert context.params["leader_elect"] is True


@pytest.mark.parametrize("source", ["plain", "chart"])
def test_server_checks_delegation_tokens_with_the_engines_key(source):
    objects = plain_objects() if source == "plain" else render_chart()
    config_map = next(o for o in objects if o["kind"] == "ConfigMap"
                      and o["metadata"]["labels"].get(COMPONENT) == "engine")
    engine_config = yaml.safe_load(config_map["data"]["engine.yaml"])
    server_args = deployment(objects, "server")["spec"]["template"]["spec"]["containers"][0][
        "args"]
    key_namespace = option(server_args, "--engine-key-namespace")
    assert key_namespace == engine_config.get("system_namespace", keys.ENGINE_NAMESPACE)
    assert not keys.is_tenant_namespace(key_namespace)
    assert role(objects, "Role", "cyclone-engine")["metadata"]["namespace"] == key_namespace
    engine_rules = role(objects, "ClusterRole", "cyclone-engine")["rules"]
    assert any("secrets" in r["resources"] and {"get", "create"} <= set(r["verbs"])
               for r in engine_rules)
    server_rules = role(objects, "ClusterRole", "cyclone-server")["rules"]
    assert any("secrets" in r["resources"] and {"get", "create", "delete"} <= set(r["verbs"])
               for r in server_rules)


@pytest.mark.parametrize("source", ["plain", "chart"])
def test_server_may_keep_the_record_of_webhook_deliveries(source):
    objects = plain_objects() if source == "plain" else render_chart()
    server_rules = role(objects, "ClusterRole", "cyclone-server")["rules"]
    assert any("configmaps" in r["resources"] and {"get", "create", "update"} <= set(r["verbs"])
               for r in server_rules)


def test_dockerfile_builds_the_cyclone_image_the_deployments_run():
    text = (REPO / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M)
    assert 'ENTRYPOINT ["cyclone"]' in text
    user = re.search(r"^USER (\d+)", text, re.M)
    assert user is not None
    for component in ("engine", "server"):
        pod = deployment(plain_objects(), component)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(user.group(1))
