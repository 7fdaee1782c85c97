"""What any cluster gives its pods, on the real node: the apiserver through the `kubernetes`
Service (in-cluster configuration), Service ClusterIPs (kube-proxy) from pods and from the
host, NodePorts on the bridge address, and names under `svc.cluster.local` (the cluster
DNS); and all of it gone from the host once the node stops. What it must not give them:
the host's loopback services (a pod with CAP_NET_RAW writes frames to 127.0.0.1 through the
gateway), a kube-proxy over another Kubernetes' chains, a root DNS server.

One node start serves every case: the module fixture starts a plane with `pod_network`,
tries a node beside a planted KUBE-* chain, starts the node, a few pods and Services, then
stops the node and looks at the host again.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.control_plane import extra_plane
from support.real_node import real_node_plane, require_node_parts
from support.realnode_kit import wait_for

from cyclone import __version__
from cyclone.devcluster import default_bin_dir
from cyclone.devcluster.node import (
    BRIDGE,
    HostRunsKubernetes,
    NodeLock,
    RealNode,
    clean_up_left_over_node,
    missing_node_parts,
    start_node,
)
from cyclone.devcluster.node_dns import hosts_lines, resolve
from cyclone.devcluster.node_host import SYSCTLS, HostChanges, read_sysctl, trusted
from cyclone.devcluster.node_iptables import (
    IPTABLES_TABLES,
    kube_chains,
    localnet_guarded,
    remove_kube_chains,
)
from cyclone.devcluster.plane import (
    KUBERNETES_SERVICE_IP,
    NODE_BRIDGE_IP,
    SERVICE_CLUSTER_IP_RANGE,
    ControlPlane,
)

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
ROUTE_LOCALNET = "net.ipv4.conf.all.route_localnet"
OTHER_KUBERNETES_CHAIN = "KUBE-CYCLONE-PROBE-OTHER"
LOOPBACK_PROBE = r"""
import json, socket, struct, sys, time
loopback_udp, bridge_udp, loopback_tcp, bridge_tcp = (int(a) for a in sys.argv[1:5])
GATEWAY = sys.argv[5]

def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def ipv4(source, target, protocol, payload):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, protocol, 0,
                         socket.inet_aton(source), socket.inet_aton(target))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload

def udp(source, target, port, payload):
    return ipv4(source, target, 17,
                struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload)

def syn(source, target, port):
    segment = struct.pack("!HHIIBBHHH", 40001, port, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = (socket.inet_aton(source) + socket.inet_aton(target)
              + struct.pack("!BBH", 0, 6, len(segment)))
    segment = segment[:16] + struct.pack("!H", checksum(pseudo + segment)) + segment[18:]
    return ipv4(source, target, 6, segment)

plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
plain.connect((GATEWAY, bridge_udp))
own_ip = plain.getsockname()[0]
gateway_mac, deadline = None, time.monotonic() + 10
while gateway_mac is None and time.monotonic() < deadline:
    plain.send(b"plain")
    time.sleep(0.1)
    for fields in (line.split() for line in open("/proc/net/arp").read().splitlines()[1:]):
        if fields[0] == GATEWAY and fields[2] != "0x0":
            gateway_mac = bytes.fromhex(fields[3].replace(":", ""))
own_mac = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
raw.bind(("eth0", 0))
raw.settimeout(0.2)
for _ in range(3):
    for packet in (udp(own_ip, "127.0.0.1", loopback_udp, b"raw to loopback"),
                   udp(own_ip, GATEWAY, bridge_udp, b"raw to the bridge"),
                   syn(own_ip, "127.0.0.1", loopback_tcp), syn(own_ip, GATEWAY, bridge_tcp)):
        raw.send(gateway_mac + own_mac + b"\x08\x00" + packet)
    time.sleep(0.2)
syn_acks, deadline = set(), time.monotonic() + 2
while time.monotonic() < deadline:
    try:
        frame = raw.recv(2048)
    except socket.timeout:
        continue
    if frame[12:14] == b"\x08\x00" and frame[23] == 6:
        if frame[14 + (frame[14] & 0xF) * 4 + 13] & 0x12 == 0x12:
            syn_acks.add(socket.inet_ntoa(frame[26:30]))
try:
    socket.create_connection((GATEWAY, loopback_tcp), timeout=3).close()
    connect = "connected"
except OSError as exc:
    connect = type(exc).__name__
print(json.dumps({"syn_acks_from": sorted(syn_acks), "connect": connect}))
"""


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
        "localnet guard": localnet_guarded(),
    }


@dataclass
class LoopbackProbe:
    """Sockets of the test process: on loopback (which no pod may reach) and on the bridge
    address (which pods reach, proving the probe's frames arrive)."""

    loopback_udp: socket.socket = field(default_factory=lambda: _bound("127.0.0.1"))
    bridge_udp: socket.socket = field(default_factory=lambda: _bound(NODE_BRIDGE_IP))
    loopback_tcp: socket.socket = field(
        default_factory=lambda: _bound("127.0.0.1", socket.SOCK_STREAM))
    bridge_tcp: socket.socket = field(
        default_factory=lambda: _bound(NODE_BRIDGE_IP, socket.SOCK_STREAM))

    def ports(self) -> list[str]:
        return [str(s.getsockname()[1]) for s in (
            self.loopback_udp, self.bridge_udp, self.loopback_tcp, self.bridge_tcp)]

    def received(self) -> dict[str, list[bytes]]:
        return {"loopback": _datagrams(self.loopback_udp),
                "bridge": _datagrams(self.bridge_udp)}

    def accepted_on_loopback(self) -> bool:
        self.loopback_tcp.setblocking(False)
        try:
            self.loopback_tcp.accept()[0].close()
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        for sock in (self.loopback_udp, self.bridge_udp, self.loopback_tcp, self.bridge_tcp):
            sock.close()


def _bound(address: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind((address, 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


def _datagrams(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    found = []
    while True:
        try:
            found.append(sock.recv(2048))
        except BlockingIOError:
            return found


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    raise AssertionError(f"no Uid line for pid {pid}")


def start_beside_another_kubernetes(plane: ControlPlane, lock: NodeLock) -> dict[str, Any]:
    """Start a node while the host holds a KUBE-* chain it did not make."""
    subprocess.run(["iptables", "-t", "nat", "-N", OTHER_KUBERNETES_CHAIN], check=True)
    try:
        with tempfile.TemporaryDirectory(prefix="cyclone-node-refused-") as workdir:
            try:
                start_node(plane, Path(workdir), lock=lock, only_images=()).stop()
            except HostRunsKubernetes as exc:
                refused = str(exc)
            else:
                refused = ""
        return {"refused": refused,
                "chain kept": f"iptables nat {OTHER_KUBERNETES_CHAIN}" in kube_chains(),
                "bridge made": Path("/sys/class/net", BRIDGE).exists()}
    finally:
        subprocess.run(["iptables", "-t", "nat", "-X", OTHER_KUBERNETES_CHAIN],
                       capture_output=True)


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
    beside_another_kubernetes: dict[str, Any] = field(default_factory=dict)
    node_port: dict[str, str] = field(default_factory=dict)
    loopback_probe: tuple[str, str] = ("", "")
    received: dict[str, list[bytes]] = field(default_factory=dict)
    accepted_on_loopback: bool = True
    route_localnet_at_the_end: str = ""
    dnsmasq_uid: int = 0


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    """Holds the machine-wide lock throughout, so that no other node changes the host between
    the looks at it."""
    require_node_parts()
    lock = NodeLock()
    lock.acquire()
    try:
        record = Services(before=services_on_host())
        with extra_plane("cyclone-node-services", pod_network=True) as plane:
            record.beside_another_kubernetes = start_beside_another_kubernetes(plane, lock)
            with real_node_plane(plane=plane, lock=lock,
                                 only_images=("toolbox", "cyclone")) as (_, node):
                record.startup = dict(node.startup)
                record.during = services_on_host()
                record.dnsmasq_uid = uid_of(node.processes["dnsmasq"].pid)
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
           "spec": {"type": "NodePort", "selector": {"app": WEB},
                    "ports": [{"port": 8080, "targetPort": 8080}]}},
          {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "headless", "namespace": NAMESPACE},
           "spec": {"clusterIP": "None", "selector": {"app": WEB}, "ports": [{"port": 80}]}},
          pod("in-cluster", CYCLONE, ["python3", "-c", LIST_PODS],
              serviceAccountName="pod-lister"))
    web = json.loads(kubectl(node, "-n", NAMESPACE, "get", "service", WEB, "-o", "json"))
    record.web_ip = web["spec"]["clusterIP"]
    record.from_host = wait_for(lambda: fetch(f"http://{record.web_ip}:8080/"), 60,
                                "the Service's ClusterIP answering the host")
    node_port = web["spec"]["ports"][0]["nodePort"]
    record.node_port = {
        "bridge": wait_for(lambda: fetch(f"http://{node.bridge_ip}:{node_port}/"), 30,
                           "the NodePort answering on the bridge address"),
        "loopback": fetch(f"http://127.0.0.1:{node_port}/")}
    probe_the_hosts_loopback(node, record)
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
    record.route_localnet_at_the_end = read_sysctl(ROUTE_LOCALNET)


def probe_the_hosts_loopback(node: RealNode, record: Services) -> None:
    """A pod with CAP_NET_RAW sends UDP datagrams and TCP SYNs to 127.0.0.1 of the host
    (Ethernet frames to the gateway's MAC), the same to the bridge address, and connects to
    the bridge address at the loopback listener's port."""
    probe = LoopbackProbe()
    try:
        prober = pod("loopback-probe", CYCLONE,
                     ["python3", "-c", LOOPBACK_PROBE, *probe.ports(), node.bridge_ip])
        prober["spec"]["containers"][0]["securityContext"] = {
            "runAsUser": 0, "capabilities": {"add": ["NET_RAW"]}}
        apply(node, prober)
        record.loopback_probe = finished(node, "loopback-probe")
        record.received = probe.received()
        record.accepted_on_loopback = probe.accepted_on_loopback()
    finally:
        probe.close()


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
def test_a_node_refuses_a_host_whose_iptables_hold_another_kubernetes_chains(
        services: Services) -> None:
    tried = services.beside_another_kubernetes
    assert OTHER_KUBERNETES_CHAIN in tried["refused"]
    assert tried["chain kept"]
    assert not tried["bridge made"]


@pytest.mark.k8s
def test_a_node_port_is_open_on_the_bridge_address_only(services: Services) -> None:
    assert services.node_port == {"bridge": f"{PAGE}\n", "loopback": ""}


@pytest.mark.k8s
def test_no_pod_reaches_a_loopback_service_of_the_host(services: Services) -> None:
    phase, log = services.loopback_probe
    assert phase == "Succeeded", log
    answers = json.loads(log)
    assert b"raw to the bridge" in services.received["bridge"]
    assert NODE_BRIDGE_IP in answers["syn_acks_from"]
    assert services.received["loopback"] == []
    assert "127.0.0.1" not in answers["syn_acks_from"]
    assert not services.accepted_on_loopback
    assert answers["connect"] == "ConnectionRefusedError"


@pytest.mark.k8s
def test_route_localnet_keeps_the_hosts_value_and_the_localnet_guard_is_there(
        services: Services) -> None:
    assert services.during["localnet guard"]
    before = services.before["sysctls"][ROUTE_LOCALNET]
    assert services.during["sysctls"][ROUTE_LOCALNET] == before
    assert services.route_localnet_at_the_end == before


@pytest.mark.k8s
def test_the_cluster_dns_does_not_run_as_root(services: Services) -> None:
    assert services.dnsmasq_uid != 0


@pytest.mark.k8s
@pytest.mark.parametrize("aspect", ["kube chains", "kube rules", "dnsmasq of a node",
                                    "route to the service range", "sysctls",
                                    "localnet guard"])
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
