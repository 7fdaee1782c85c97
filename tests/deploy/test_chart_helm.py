"""The chart as operators expect it, checked with the real Helm: `helm lint` is clean, the
schema types every value and rejects bad ones, the CRDs ship in crds/, labels and
selectors follow the conventions, and each option (admin token Secret, probes,
PodDisruptionBudgets, NetworkPolicy, Ingress, persistence) renders what it says."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from .chart import (
    CHART,
    DEPLOY,
    RenderError,
    chart_schema,
    chart_values,
    helm,
    leaf_paths,
    render_chart,
    render_notes,
    template_files,
)
from .test_manifests import K8S_VERSION, deployment, option

SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance",
                 "app.kubernetes.io/component"}
EVERYTHING_ON = {
    "server": {"replicas": 2},
    "persistence": {"accessMode": "ReadWriteMany", "storageClass": "shared"},
    "networkPolicy": {"enabled": True, "serverFrom": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}]},
    "ingress": {"enabled": True, "className": "nginx", "host": "ci.example.com",
                "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "512m"},
                "tls": [{"secretName": "ci-tls", "hosts": ["ci.example.com"]}]},
    "localPathProvisioner": {"enabled": True},
    "imagePullSecrets": ["registry"],
}


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
def test_helm_lint_is_clean(strict):
    done = helm("lint", *(["--strict"] if strict else []))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


@pytest.mark.parametrize(("overrides", "message"), [
    ({"engine": {"replicas": "two"}}, "engine.replicas: Invalid type. Expected: integer"),
    ({"engine": {"replica": 2}}, "Additional property replica is not allowed"),
    ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
    ({"server": {"port": 70000}}, "server.port"),
    ({"settings": {"openControlCluster": "yes"}}, "settings.openControlCluster"),
    ({"persistence": {"size": "lots"}}, "persistence.size"),
])
def test_the_schema_rejects_bad_values(overrides, message):
    with pytest.raises(RenderError, match="schema") as refused:
        render_chart(overrides)
    assert message in str(refused.value)


def test_helm_lint_rejects_a_bad_value():
    done = helm("lint", "--strict", "--set", "engine.replicas=two")
    assert done.returncode != 0
    assert "engine.replicas: Invalid type" in done.stdout + done.stderr


def _schema_at(schema: dict, dotted: str) -> dict:
    node = schema
    for part in dotted.split("."):
        assert node.get("additionalProperties") is False, f"{dotted}: open object above {part}"
        assert part in node["properties"], f"values.schema.json has no {dotted}"
        node = node["properties"][part]
    return node


def test_every_value_is_typed_by_the_schema_and_used_by_a_template():
    schema = chart_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    texts = "\n".join(path.read_text() for path in template_files())
    for dotted in leaf_paths(chart_values()):
        parts = dotted.split(".")
        if len(parts) > 2 and parts[-2] in ("requests", "limits"):
            parts = parts[:-2]
        assert "type" in _schema_at(schema, ".".join(parts)), \
            f"{dotted} has no type in values.schema.json"
        used = [n for n in range(len(parts), 1 if len(parts) > 1 else 0, -1)
                if re.search(re.escape(".Values." + ".".join(parts[:n])) + r"(?![\w.])", texts)]
        assert used, f"no template uses {dotted}"


def test_the_crds_ship_in_the_charts_crds_folder_as_in_deploy():
    assert [p.name for p in (CHART / "crds").iterdir()] == ["cyclone-crds.yaml"]
    assert (CHART / "crds" / "cyclone-crds.yaml").read_bytes() == \
        (DEPLOY / "crds" / "cyclone-crds.yaml").read_bytes()


def test_objects_carry_the_standard_labels_and_select_by_name_instance_component():
    objects = render_chart(name="ci", namespace="tools")
    for item in objects:
        labels = item["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "cyclone"
        assert labels["app.kubernetes.io/instance"] == "ci"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "cyclone-0.1.0"
    upgraded = render_chart({"image": {"tag": "0.2.0"}}, name="ci", namespace="tools")
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        for before in of_kind(objects, kind):
            after = named(upgraded, kind, before["metadata"]["name"])
            selector = before["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert set(selector) == SELECTOR_KEYS
            assert (after["spec"]["selector"].get("matchLabels", after["spec"]["selector"])
                    == selector)
            pods = [d for d in of_kind(objects, "Deployment") if selector.items()
                    <= d["spec"]["template"]["metadata"]["labels"].items()]
            assert len(pods) == 1, (kind, before["metadata"]["name"])


def test_the_chart_holds_no_admin_token_and_the_server_makes_it_in_its_namespace():
    objects = render_chart({"adminToken": {"secretName": "ops-token", "key": "admin"}},
                           name="ci", namespace="tools")
    assert not of_kind(objects, "Secret")
    server = deployment(objects, "server")["spec"]["template"]["spec"]
    args = server["containers"][0]["args"]
    assert option(args, "--admin-token-secret") == "ops-token:admin"
    assert {e["name"] for e in server["containers"][0]["env"]} >= {"POD_NAMESPACE"}
    assert not [v for v in server["volumes"] if "secret" in v]
    notes = render_notes({"adminToken": {"secretName": "ops-token", "key": "admin"}},
                         name="ci", namespace="tools")
    assert ("install -m 600 /dev/null ~/.cyclone/admin-token\n  kubectl -n tools get secret "
            "ops-token -o jsonpath='{.data.admin}' | base64 -d > ~/.cyclone/admin-token\n"
            in notes)
    assert not re.search(r"base64 -d *$", notes, re.MULTILINE), "NOTES print the token"
    assert "kubectl -n tools port-forward service/ci-server 7099:7099" in notes
    assert ("cyclone config set-context ci --server http://127.0.0.1:7099 "
            "--token-file ~/.cyclone/admin-token --current" in notes)
    assert "WARNING" not in notes


def _who_may_read_secrets_of(objects: list[dict], namespace: str) -> set[str]:
    """The ServiceAccounts whose bound roles `get` Secrets in `namespace`."""
    readers = set()
    for binding in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"):
        if binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] != namespace:
            continue
        role = named(objects, binding["roleRef"]["kind"], binding["roleRef"]["name"])
        if any("secrets" in r["resources"] and "get" in r["verbs"] for r in role["rules"]):
            readers |= {s["name"] for s in binding["subjects"]}
    return readers


def test_the_engine_and_the_server_are_who_may_read_the_admin_token():
    """Both ClusterRoles reach every namespace's Secrets (tenant namespaces come and go), so
    the token Secret of the release namespace too: the Roles add no rule on Secrets."""
    objects = render_chart(EVERYTHING_ON, name="ci", namespace="tools")
    assert _who_may_read_secrets_of(objects, "tools") == {"ci-engine", "ci-server"}
    for role in of_kind(objects, "Role"):
        assert not [r for r in role["rules"] if "secrets" in r["resources"]], role
    for name in ("ci-engine", "ci-server"):
        rules = named(objects, "ClusterRole", name)["rules"]
        assert any("secrets" in r["resources"] and {"get", "create"} <= set(r["verbs"])
                   for r in rules)


def test_the_notes_warn_of_an_ingress_without_tls():
    plain = {"ingress": {"enabled": True, "host": "ci.example.com"}}
    notes = render_notes(plain)
    assert "WARNING: the Ingress has no TLS" in notes
    assert "--server http://ci.example.com " in notes
    secured = render_notes({"ingress": {**plain["ingress"], "tls": [
        {"secretName": "ci-tls", "hosts": ["ci.example.com"]}]}})
    assert "WARNING" not in secured and "--server https://ci.example.com " in secured


def test_both_parts_have_probes_and_resources():
    objects = render_chart()
    engine = deployment(objects, "engine")["spec"]["template"]["spec"]["containers"][0]
    server = deployment(objects, "server")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert engine[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert server[probe]["httpGet"] == {"path": "/healthcheck", "port": "http"}
    for container in (engine, server):
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}
        assert "memory" in container["resources"]["limits"]


def test_a_leader_stays_through_upgrades_and_drains():
    objects = render_chart()
    engine = deployment(objects, "engine")
    assert engine["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    [budget] = of_kind(objects, "PodDisruptionBudget")
    assert budget["metadata"]["name"] == "cyclone-engine"
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == engine["spec"]["selector"][
        "matchLabels"]
    two_servers = render_chart({"server": {"replicas": 2},
                                "persistence": {"accessMode": "ReadWriteMany"}})
    assert {b["metadata"]["name"] for b in of_kind(two_servers, "PodDisruptionBudget")} == {
        "cyclone-engine", "cyclone-server"}
    assert not of_kind(render_chart({"podDisruptionBudget": {"enabled": False}}),
                       "PodDisruptionBudget")

    def config_checksum(overrides: dict) -> str:
        return deployment(render_chart(overrides), "engine")["spec"]["template"][
            "metadata"]["annotations"]["checksum/config"]

    assert config_checksum({}) == config_checksum({"server": {"replicas": 1}})
    assert config_checksum({}) != config_checksum({"engine": {"podPendingTimeoutSeconds": 60}})


def test_network_policies_are_off_by_default_and_admit_only_the_ports_when_on():
    """The server's port from `serverFrom` (`[]`: anywhere); the engine's metrics port from
    `metricsFrom`, `[]` admitting only pods of the release namespace, never every pod."""
    assert not of_kind(render_chart(), "NetworkPolicy")
    objects = render_chart(EVERYTHING_ON)
    server = named(objects, "NetworkPolicy", "cyclone-server")
    engine = named(objects, "NetworkPolicy", "cyclone-engine")
    for policy, component in ((server, "server"), (engine, "engine")):
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert policy["spec"]["podSelector"]["matchLabels"] == deployment(
            objects, component)["spec"]["selector"]["matchLabels"]
    assert server["spec"]["ingress"] == [{
        "ports": [{"protocol": "TCP", "port": 7099}],
        "from": EVERYTHING_ON["networkPolicy"]["serverFrom"]}]
    assert engine["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9090}],
                                          "from": [{"podSelector": {}}]}]
    defaults = render_chart({"networkPolicy": {"enabled": True}})
    anyone = named(defaults, "NetworkPolicy", "cyclone-server")
    assert anyone["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 7099}]}]
    assert named(defaults, "NetworkPolicy", "cyclone-engine")["spec"]["ingress"] == engine[
        "spec"]["ingress"]
    prometheus = [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}]
    scraped = named(render_chart({"networkPolicy": {"enabled": True, "metricsFrom": prometheus}}),
                    "NetworkPolicy", "cyclone-engine")
    assert scraped["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9090}],
                                           "from": prometheus}]


def test_the_ingress_is_optional_and_routes_to_the_server_service():
    assert not of_kind(render_chart(), "Ingress")
    [ingress] = of_kind(render_chart(EVERYTHING_ON, name="ci"), "Ingress")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["metadata"]["annotations"] == EVERYTHING_ON["ingress"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == EVERYTHING_ON["ingress"]["tls"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "ci.example.com"
    assert rule["http"]["paths"] == [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": "ci-server", "port": {"name": "http"}}}}]


def test_the_data_claim_is_kept_on_uninstall_and_its_class_or_an_existing_one_chosen():
    claim = of_kind(render_chart(), "PersistentVolumeClaim")[0]
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "storageClassName" not in claim["spec"]
    for value, expected in (("fast", "fast"), ("-", "")):
        [claim] = of_kind(render_chart({"persistence": {"storageClass": value}}),
                          "PersistentVolumeClaim")
        assert claim["spec"]["storageClassName"] == expected
    objects = render_chart({"persistence": {"existingClaim": "my-data"}})
    assert not of_kind(objects, "PersistentVolumeClaim")
    volumes = deployment(objects, "server")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "my-data"}} in volumes


def test_everything_enabled_validates_strictly():
    objects = render_chart(EVERYTHING_ON)
    for item in objects:
        kubernetes_validate.validate(item, K8S_VERSION, strict=True)
    for component in ("engine", "server", "local-path-provisioner"):
        pod = deployment(objects, component)["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "registry"}]


def test_values_as_helm_set_types_them_are_accepted():
    objects = render_chart({"settings": {"openControlCluster": False}, "image": {"tag": 2}})
    server = deployment(objects, "server")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "CYCLONE_OPEN_CONTROL_CLUSTER", "value": "false"} in server["env"]
    assert server["image"] == "cyclone/cyclone:2"


def test_the_gc_delay_reaches_the_engine_config(tmp_path):
    from cyclone.components import load_engine_config

    [config_map] = [o for o in render_chart({"engine": {"gcDelaySeconds": 5}})
                    if o["kind"] == "ConfigMap"]
    path = tmp_path / "engine.yaml"
    path.write_text(config_map["data"]["engine.yaml"])
    assert load_engine_config(str(path)).gc_delay_seconds == 5
