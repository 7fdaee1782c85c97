"""A real node's life: it runs a pod the way a cluster does, serves its logs through the
apiserver, keeps a second node out while it runs, and leaves the host as it found it.

One node start serves every case: the module fixture records the host, starts the node,
runs one pod, tries a second start, stops the node and records the host again.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.control_plane import extra_plane, unavailable
from support.real_node import real_node_plane, require_node_parts

from cyclone import __version__
from cyclone.devcluster import ControlPlane, default_bin_dir
from cyclone.devcluster.node import (
    BRIDGE,
    HostRunsKubernetes,
    NodeBusy,
    NodeLock,
    RealNode,
    clean_up_left_over_node,
    missing_node_parts,
    start_node,
)
from cyclone.devcluster.node_host import CGROUP_ROOT, SYSCTLS, read_sysctl

pytestmark = pytest.mark.timeout(600)

TOOLBOX = f"cyclone/toolbox:{__version__}"
IMAGES = ("toolbox",)
POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "lifecycle", "namespace": "default"},
    "spec": {
        "restartPolicy": "Never",
        "initContainers": [{
            "name": "prepare", "image": TOOLBOX, "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", "echo prepared; echo from-init > /work/handoff"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        }],
        "containers": [{
            "name": "main", "image": TOOLBOX, "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c",
                        "cat /work/handoff; echo '{\"answer\": 42}' > /dev/termination-log; "
                        "exit 1"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        }],
        "volumes": [{"name": "work", "emptyDir": {}}],
    },
}


NODE_PATHS = ("/var/log/pods", "/var/log/containers", "/var/lib/kubelet", "/var/lib/cni",
              "/run/containerd", "/run/netns")


def host_state(node_links: Iterable[str] = ()) -> dict[str, Any]:
    """What a node may change on the host, as comparable values. Other tests run beside this
    one (their own mounts, links, iptables rules): only what a node could touch is compared."""
    with open("/proc/mounts") as mounts:
        mountpoints = sorted(line.split()[1] for line in mounts)
    watched = ("/var/", "/run/netns", "/run/containerd", "/tmp/cyclone-node-")
    links = set(os.listdir("/sys/class/net"))
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    return {
        "sysctls": {key: read_sysctl(key) for key in SYSCTLS},
        "mounts": [m for m in mountpoints if m.startswith(watched)],
        "links": sorted(links & {BRIDGE, *node_links}),
        "kubepods": sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods")),
        "dirs": {d: sorted(os.listdir(d)) if os.path.isdir(d) else None for d in NODE_PATHS},
        "iptables": [r for r in rules.splitlines()
                     if "KUBE" in r or BRIDGE in r or "10.88." in r],
    }


def links_on_the_bridge() -> list[str]:
    """The host ends of the pods' veth pairs."""
    return [name for name in os.listdir("/sys/class/net")
            if os.path.realpath(f"/sys/class/net/{name}/master").endswith(f"/{BRIDGE}")]


@dataclass
class Lifecycle:
    before: dict[str, Any]
    pod: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    node_ip: str = ""
    bridge_ip: str = ""
    second_start: str = ""
    second_start_waited: float = 0.0
    after: dict[str, Any] = field(default_factory=dict)
    abandoned_shims: list[int] = field(default_factory=list)
    node_links: list[str] = field(default_factory=list)
    abandoned_links: list[str] = field(default_factory=list)
    abandoned_links_left: list[str] = field(default_factory=list)
    exec_output: str = ""
    abandoned_shims_alive: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(default_bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr.strip()}"
    return result.stdout


def wait_finished(kubeconfig: Path, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        pod = json.loads(kubectl(kubeconfig, "get", "pod", name, "-o", "json"))
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            return pod
        assert time.monotonic() < deadline, f"pod {name} still {pod['status']}"
        time.sleep(0.2)


SLEEPER = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "left-behind", "namespace": "default"},
    "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [{
        "name": "main", "image": TOOLBOX, "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", "3600"]}]},
}


def wait_running(kubeconfig: Path, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while json.loads(kubectl(kubeconfig, "get", "pod", name, "-o", "json")
                     )["status"].get("phase") != "Running":
        assert time.monotonic() < deadline, f"pod {name} not Running"
        time.sleep(0.2)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def abandon_a_node(plane: ControlPlane, workdir: Path, lock: NodeLock,
                   links: list[str]) -> list[int]:
    """A node whose test process died: kubelet and containerd killed, `stop()` never run, a
    container still running. Returns the pids of its container shims; puts its pod's veth
    in `links`."""
    try:
        node = start_node(plane, workdir, lock=lock, only_images=IMAGES)
    except HostRunsKubernetes as exc:
        unavailable(str(exc))
    kubectl(node.kubeconfig, "create", "-f", "-", stdin=json.dumps(SLEEPER))
    wait_running(node.kubeconfig, "left-behind")
    links.extend(links_on_the_bridge())
    for proc in node.processes.values():
        proc.kill()
        proc.wait()
    return processes_mentioning(f"{workdir}/containerd/containerd.sock")


@pytest.fixture(scope="module")
def lifecycle() -> Iterator[Lifecycle]:
    """Holds the machine-wide lock throughout, so that no other node changes the host
    between the two looks at it."""
    require_node_parts()
    lock = NodeLock()
    lock.acquire()
    abandoned = Path(tempfile.mkdtemp(prefix="cyclone-node-abandoned-"))
    try:
        record = Lifecycle(before=host_state())
        with extra_plane("cyclone-node-lifecycle") as plane:
            record.abandoned_shims = abandon_a_node(plane, abandoned, lock,
                                                    record.abandoned_links)
            started = time.monotonic()
            with real_node_plane(plane=plane, lock=lock, only_images=IMAGES) as (_, node):
                record.timings["node up, after cleaning up the abandoned one"] = (
                    time.monotonic() - started)
                record.abandoned_shims_alive = [
                    pid for pid in record.abandoned_shims if Path(f"/proc/{pid}").exists()]
                record.abandoned_links_left = [
                    name for name in record.abandoned_links
                    if os.path.exists(f"/sys/class/net/{name}")]
                run_the_pod(node, record)
                exec_into_a_pod_that_calls_the_host(node, record)
                with tempfile.TemporaryDirectory(prefix="cyclone-node-second-") as second:
                    tried = time.monotonic()
                    try:
                        start_node(plane, Path(second), lock_timeout=1.0)
                    except NodeBusy as exc:
                        record.second_start = str(exc)
                    record.second_start_waited = time.monotonic() - tried
                stopping = time.monotonic()
                node.stop()
                record.timings["node stop"] = time.monotonic() - stopping
                node.stop()
        record.after = host_state([*record.abandoned_links, *record.node_links])
    finally:
        try:
            clean_up_left_over_node()
        finally:
            lock.release()
            shutil.rmtree(abandoned, ignore_errors=True)
    yield record


def run_the_pod(node: RealNode, record: Lifecycle) -> None:
    kubeconfig = node.kubeconfig
    record.bridge_ip = node.bridge_ip
    created = time.monotonic()
    kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(POD))
    record.pod = wait_finished(kubeconfig, "lifecycle")
    record.timings["pod created to finished"] = time.monotonic() - created
    record.node_links.extend(links_on_the_bridge())
    for container in ("prepare", "main"):
        result = subprocess.run(
            [str(default_bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", "logs",
             "lifecycle", "-c", container], capture_output=True, text=True, timeout=60)
        record.logs[container] = result.stdout if result.returncode == 0 else result.stderr
    addresses = json.loads(kubectl(kubeconfig, "get", "node", node.name, "-o", "json"))
    record.node_ip = next(a["address"] for a in addresses["status"]["addresses"]
                          if a["type"] == "InternalIP")


class Greeting(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from the host")

    def log_message(self, *args: object) -> None:
        pass


def exec_into_a_pod_that_calls_the_host(node: RealNode, record: Lifecycle) -> None:
    """`kubectl exec` (through the apiserver) runs wget in a pod against a server on the host
    bound to the bridge address."""
    server = http.server.ThreadingHTTPServer((node.bridge_ip, 0), Greeting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pod = {**SLEEPER, "metadata": {"name": "exec-target", "namespace": "default"}}
        kubectl(node.kubeconfig, "create", "-f", "-", stdin=json.dumps(pod))
        wait_running(node.kubeconfig, "exec-target")
        result = subprocess.run(
            [str(default_bin_dir() / "kubectl"), f"--kubeconfig={node.kubeconfig}", "exec",
             "exec-target", "--", "wget", "-qO-",
             f"http://{node.bridge_ip}:{server.server_address[1]}/"],
            capture_output=True, text=True, timeout=60)
        record.exec_output = result.stdout if result.returncode == 0 else result.stderr
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.k8s
def test_a_pod_with_an_init_container_and_an_empty_dir_fails_with_its_termination_message(
        lifecycle: Lifecycle) -> None:
    status = lifecycle.pod["status"]
    assert status["phase"] == "Failed"
    init = status["initContainerStatuses"][0]["state"]["terminated"]
    assert init["exitCode"] == 0
    main = status["containerStatuses"][0]["state"]["terminated"]
    assert main["exitCode"] == 1
    assert json.loads(main["message"]) == {"answer": 42}
    assert status["containerStatuses"][0]["containerID"].startswith("containerd://")


@pytest.mark.k8s
def test_container_logs_come_through_the_apiserver_from_the_kubelet(
        lifecycle: Lifecycle) -> None:
    assert lifecycle.logs == {"prepare": "prepared\n", "main": "from-init\n"}


@pytest.mark.k8s
def test_exec_through_the_apiserver_runs_in_a_pod_that_reaches_the_host_at_the_bridge_address(
        lifecycle: Lifecycle) -> None:
    assert lifecycle.exec_output == "hello from the host"


@pytest.mark.k8s
def test_the_next_start_cleans_up_a_node_whose_process_was_killed(
        lifecycle: Lifecycle) -> None:
    assert lifecycle.abandoned_shims, "the abandoned node had no running container"
    assert lifecycle.abandoned_links, "the abandoned node's pod had a veth on the bridge"
    assert lifecycle.abandoned_links_left == []
    assert lifecycle.abandoned_shims_alive == []


@pytest.mark.k8s
def test_the_node_address_is_the_bridge_address_pods_reach_the_host_at(
        lifecycle: Lifecycle) -> None:
    assert lifecycle.node_ip == lifecycle.bridge_ip == "10.88.0.1"


@pytest.mark.k8s
def test_a_second_node_waits_for_the_machine_wide_lock(lifecycle: Lifecycle) -> None:
    assert "another real node holds /run/cyclone-real-node/lock" in lifecycle.second_start
    assert lifecycle.second_start_waited >= 1.0


@pytest.mark.k8s
@pytest.mark.parametrize("aspect", ["sysctls", "mounts", "links", "kubepods", "dirs", "iptables"])
def test_stopping_the_node_restores_the_host(lifecycle: Lifecycle, aspect: str) -> None:
    assert lifecycle.after[aspect] == lifecycle.before[aspect]


def test_missing_node_parts_names_each_binary_and_image_archive_it_lacks(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "pause.oci.tar").write_bytes(b"")
    missing = missing_node_parts(bin_dir=tmp_path, images=images)
    assert missing[:2] == ["kubelet", "kubectl"]
    assert f"{images}/toolbox.oci.tar" in missing
    assert f"{images}/pause.oci.tar" not in missing
