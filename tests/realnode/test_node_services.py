"""What any cluster gives its pods, on the real node: the apiserver through the `kubernetes`
Service (in-cluster configuration), Service ClusterIPs (kube-proxy) from pods and from the
host, and names under `svc.cluster.local` (the cluster DNS); and all of it gone from the
host once the node stops.

One node start serves every case: the module fixture starts a plane with `pod_network`,
the node, a few pods and Services, then stops the node and looks at the host again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.real_node import real_node_plane, require_node_parts

from cyclone import __version__
from cyclone.devcluster import default_bin_dir
from cyclone.devcluster.node import (
    BRIDGE,
    NodeLock,
    RealNode,
    clean_up_left_over_node,
    missing_node_parts,
)
from cyclone.devcluster.node_dns import hosts_lines, resolve
from cyclone.devcluster.node_host import SYSCTLS, HostChanges, read_sysctl, trusted
from cyclone.devcluster.node_iptables import IPTABLES_TABLES, kube_chains, remove_kube_chains
from cyclone.devcluster.plane import KUBERNETES_SERVICE_IP, SERVICE_CLUSTER_IP_RANGE

pytestmark = pytest.mark.timeout(600)

NAMESPACE = "services"
TOOLBOX = f"docker.io/cyclone/toolbox:{__version__}"
CYCLONE = f"docker.io/cyclone/cyclone:{__version__}"
LIST_PODS = """
from lightkube import Client
from lightkube.resources.core_v1 import Pod
print(" ".join(sorted(pod.metadata.name for pod in Client().list(Pod))))
"""
WEB = "web"
PAGE = "served by httpd in a pod"


def kubectl(node: RealNode, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [str(default_bin_dir() / "kubectl"), f"--kubeconfig={node.kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr.strip()}"
    return result.stdout if result.returncode == 0 else result.stderr


def apply(node: RealNode, *documents: dict[str, Any]) -> None:
    kubectl(node, "apply", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)}))


def pod(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, **spec,
                 "containers": [{"name": "main", "image": image,
                                 "imagePullPolicy": "IfNotPresent", "command": command}]},
    }


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not within {timeout:g}s (last: {value!r})"
        time.sleep(interval)


def pod_status(node: RealNode, name: str) -> dict[str, Any]:
    return json.loads(kubectl(node, "-n", NAMESPACE, "get", "pod", name, "-o", "json"))["status"]


def finished(node: RealNode, name: str) -> tuple[str, str]:
    """The pod's phase once it ended, and its log."""
    status = wait_for(lambda: (s := pod_status(node, name)).get("phase") in (
        "Succeeded", "Failed") and s, 120, f"pod {name} finishing")
    return status["phase"], kubectl(node, "-n", NAMESPACE, "logs", name, check=False)


def services_on_host() -> dict[str, Any]:
    """What the node's Services and DNS add to the host."""
    dnsmasq = subprocess.run(["pgrep", "-a", "dnsmasq"], capture_output=True, text=True)
    routes = subprocess.run(["ip", "route", "show", SERVICE_CLUSTER_IP_RANGE],
                            capture_output=True, text=True).stdout.strip()
    rules = {table: [r for r in subprocess.run(["iptables", "-t", table, "-S"],
                                               capture_output=True, text=True).stdout.splitlines()
                     if "KUBE-" in r] for table in IPTABLES_TABLES}
    return {
        "kube chains": kube_chains(),
        "kube rules": rules,
        "dnsmasq of a node": [line for line in dnsmasq.stdout.splitlines()
                              if "cyclone-node-" in line],
        "route to the service range": routes,
        "sysctls": {key: read_sysctl(key) for key in SYSCTLS},
    }


@dataclass
class Services:
    before: dict[str, Any]
    during: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    in_cluster: tuple[str, str] = ("", "")
    by_name: tuple[str, str] = ("", "")
    from_host: str = ""
    web_ip: str = ""
    resolved: dict[str, list[str] | None] = field(default_factory=dict)
    resolved_after_delete: list[str] | None = None
    startup: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    """Holds the machine-wide lock throughout, so that no other node changes the host between
    the looks at it."""
    require_node_parts()
    lock = NodeLock()
    lock.acquire()
    try:
        record = Services(before=services_on_host())
        with real_node_plane("cyclone-node-services", lock=lock, pod_network=True,
                             only_images=("toolbox", "cyclone")) as (_, node):
            record.startup = dict(node.startup)
            record.during = services_on_host()
            exercise(node, record)
            node.stop()
        record.after = services_on_host()
    finally:
        try:
            clean_up_left_over_node()
        finally:
            lock.release()
    yield record


def exercise(node: RealNode, record: Services) -> None:
    apply(node, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    apply(node,
          {"apiVersion": "v1", "kind": "ServiceAccount",
           "metadata": {"name": "pod-lister", "namespace": NAMESPACE}},
          {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": "pod-lister", "namespace": NAMESPACE},
           "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]},
          {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "pod-lister", "namespace": NAMESPACE},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                       "name": "pod-lister"},
           "subjects": [{"kind": "ServiceAccount", "name": "pod-lister",
                         "namespace": NAMESPACE}]},
          pod(WEB, TOOLBOX, ["sh", "-c", f"mkdir -p /tmp/www && echo '{PAGE}' > "
                             "/tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]),
          {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": WEB, "namespace": NAMESPACE},
           "spec": {"selector": {"app": WEB}, "ports": [{"port": 8080, "targetPort": 8080}]}},
          {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "headless", "namespace": NAMESPACE},
           "spec": {"clusterIP": "None", "selector": {"app": WEB}, "ports": [{"port": 80}]}},
          pod("in-cluster", CYCLONE, ["python3", "-c", LIST_PODS],
              serviceAccountName="pod-lister"))
    record.web_ip = json.loads(kubectl(node, "-n", NAMESPACE, "get", "service", WEB, "-o",
                                       "json"))["spec"]["clusterIP"]
    record.from_host = wait_for(lambda: fetch(f"http://{record.web_ip}:8080/"), 60,
                                "the Service's ClusterIP answering the host")
    dns = node.bridge_ip
    for name in (f"{WEB}.{NAMESPACE}.svc.cluster.local", "kubernetes.default.svc.cluster.local",
                 f"headless.{NAMESPACE}.svc.cluster.local",
                 f"missing.{NAMESPACE}.svc.cluster.local"):
        record.resolved[name] = resolve(name, dns)
    apply(node, pod("by-name", TOOLBOX, ["wget", "-qO-", f"http://{WEB}.{NAMESPACE}.svc:8080/"]))
    record.in_cluster = finished(node, "in-cluster")
    record.by_name = finished(node, "by-name")
    kubectl(node, "-n", NAMESPACE, "delete", "service", WEB)
    deadline = time.monotonic() + 10
    while (answer := resolve(f"{WEB}.{NAMESPACE}.svc.cluster.local", dns)) != [] and (
            time.monotonic() < deadline):
        time.sleep(0.2)
    record.resolved_after_delete = answer


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


@pytest.mark.k8s
def test_a_pod_lists_pods_through_the_in_cluster_configuration(services: Services) -> None:
    phase, log = services.in_cluster
    assert phase == "Succeeded", log
    assert {"in-cluster", WEB} <= set(log.split())


@pytest.mark.k8s
def test_a_pod_reaches_a_service_by_its_short_name_through_the_cluster_dns(
        services: Services) -> None:
    assert services.by_name == ("Succeeded", f"{PAGE}\n")


@pytest.mark.k8s
def test_the_host_reaches_a_service_at_its_cluster_ip(services: Services) -> None:
    assert services.web_ip.startswith("10.96.")
    assert services.from_host == f"{PAGE}\n"


@pytest.mark.k8s
def test_the_cluster_dns_answers_services_and_nothing_else(services: Services) -> None:
    assert services.resolved == {
        f"{WEB}.{NAMESPACE}.svc.cluster.local": [services.web_ip],
        "kubernetes.default.svc.cluster.local": [KUBERNETES_SERVICE_IP],
        f"headless.{NAMESPACE}.svc.cluster.local": [],
        f"missing.{NAMESPACE}.svc.cluster.local": [],
    }


@pytest.mark.k8s
def test_a_deleted_service_leaves_the_cluster_dns(services: Services) -> None:
    assert services.resolved_after_delete == []


@pytest.mark.k8s
def test_the_node_adds_kube_proxy_chains_dnsmasq_and_a_route_while_it_runs(
        services: Services) -> None:
    assert services.before["kube chains"] == []
    assert "iptables nat KUBE-SERVICES" in services.during["kube chains"]
    assert len(services.during["dnsmasq of a node"]) == 1
    assert f"dev {BRIDGE}" in services.during["route to the service range"]


@pytest.mark.k8s
@pytest.mark.parametrize("aspect", ["kube chains", "kube rules", "dnsmasq of a node",
                                    "route to the service range", "sysctls"])
def test_stopping_the_node_removes_its_services_from_the_host(
        services: Services, aspect: str) -> None:
    assert services.after[aspect] == services.before[aspect]


def test_dns_records_name_every_service_with_a_cluster_ip() -> None:
    listed = [
        {"metadata": {"name": "web", "namespace": "a"}, "spec": {"clusterIP": "10.96.0.20"}},
        {"metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.1"}},
        {"metadata": {"name": "headless", "namespace": "a"}, "spec": {"clusterIP": "None"}},
        {"metadata": {"name": "external", "namespace": "a"},
         "spec": {"type": "ExternalName", "externalName": "example.org"}},
    ]
    assert hosts_lines(listed) == (
        "10.96.0.1 kubernetes.default.svc.cluster.local\n"
        "10.96.0.20 web.a.svc.cluster.local\n")



def test_a_journal_whose_chain_list_is_not_a_list_of_names_is_foreign() -> None:
    planted = HostChanges(workdir="/tmp/cyclone-node-abc123",
                          kube_chains_before="KUBE-*")  # type: ignore[arg-type]
    kept, foreign = trusted(planted)
    assert kept.kube_chains_before is None
    assert foreign == ["kube_chains_before 'KUBE-*'"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (iptables)")
def test_removing_the_nodes_chains_keeps_those_that_were_there_before() -> None:
    """Under the machine-wide lock: no node's kube-proxy chains are there meanwhile."""
    lock = NodeLock()
    lock.acquire()
    try:
        ours, theirs = "KUBE-CYCLONE-PROBE-OURS", "KUBE-CYCLONE-PROBE-THEIRS"
        subprocess.run(["iptables", "-t", "filter", "-N", theirs], check=True)
        before = set(kube_chains())
        subprocess.run(["iptables", "-t", "filter", "-N", ours], check=True)
        subprocess.run(["iptables", "-t", "filter", "-A", "INPUT", "-m", "comment", "--comment",
                        "probe jump", "-j", ours], check=True)
        problems = remove_kube_chains(before)
        left = kube_chains()
        input_rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True,
                                     text=True).stdout
    finally:
        for chain in (ours, theirs):
            subprocess.run(["iptables", "-D", "INPUT", "-m", "comment", "--comment",
                            "probe jump", "-j", chain], capture_output=True)
            subprocess.run(["iptables", "-X", chain], capture_output=True)
        lock.release()
    assert problems == []
    assert f"iptables filter {theirs}" in left
    assert f"iptables filter {ours}" not in left
    assert ours not in input_rules


def test_missing_node_parts_names_kube_proxy_and_dnsmasq(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = missing_node_parts(bin_dir=tmp_path, images=tmp_path)
    assert {"kube-proxy", "dnsmasq", "conntrack", "iptables"} <= set(missing)
