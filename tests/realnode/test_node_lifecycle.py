"""A real node's life: it runs a pod the way a cluster does, serves its logs through the
apiserver, keeps a second node out while it runs, and leaves the host as it found it.

One node start serves every case: the module fixture records the host, starts the node,
runs one pod, tries a second start, stops the node and records the host again.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.real_node import real_node_plane, require_node_parts

from cyclone import __version__
from cyclone.devcluster import default_bin_dir
from cyclone.devcluster.node import NodeBusy, NodeLock, start_node
from cyclone.devcluster.node_host import CGROUP_ROOT, SYSCTLS, read_sysctl

pytestmark = pytest.mark.k8s

TOOLBOX = f"cyclone/toolbox:{__version__}"
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


def host_state() -> dict[str, Any]:
    """What a node may change on the host, as comparable values."""
    with open("/proc/mounts") as mounts:
        mountpoints = sorted(line.split()[1] for line in mounts)
    return {
        "sysctls": {key: read_sysctl(key) for key in SYSCTLS},
        "mounts": mountpoints,
        "links": sorted(os.listdir("/sys/class/net")),
        "kubepods": sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods")),
        "dirs": {d: sorted(os.listdir(d)) for d in ("/var/log", "/var/lib", "/run")
                 if os.path.isdir(d)},
        "iptables": subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout,
    }


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
    lock_free_after_stop: bool = False
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


@pytest.fixture(scope="module")
def lifecycle() -> Iterator[Lifecycle]:
    require_node_parts()
    record = Lifecycle(before=host_state())
    started = time.monotonic()
    with real_node_plane("cyclone-node-lifecycle") as (plane, node):
        record.timings["plane and node up"] = time.monotonic() - started
        record.bridge_ip = node.bridge_ip
        kubeconfig = node.kubeconfig
        created = time.monotonic()
        kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(POD))
        record.pod = wait_finished(kubeconfig, "lifecycle")
        record.timings["pod created to finished"] = time.monotonic() - created
        for container in ("prepare", "main"):
            record.logs[container] = kubectl(kubeconfig, "logs", "lifecycle", "-c", container)
        addresses = json.loads(kubectl(kubeconfig, "get", "node", node.name, "-o", "json"))
        record.node_ip = next(a["address"] for a in addresses["status"]["addresses"]
                              if a["type"] == "InternalIP")
        with tempfile.TemporaryDirectory(prefix="cyclone-node-second-") as second:
            tried = time.monotonic()
            try:
                start_node(plane, Path(second), lock_timeout=1.0)
            except NodeBusy as exc:
                record.second_start = str(exc)
            record.second_start_waited = time.monotonic() - tried
        stopping = time.monotonic()
    record.timings["node and plane stop"] = time.monotonic() - stopping
    record.after = host_state()
    lock = NodeLock()
    try:
        lock.acquire(timeout=0)
        record.lock_free_after_stop = True
    finally:
        lock.release()
    yield record


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


def test_container_logs_come_through_the_apiserver_from_the_kubelet(
        lifecycle: Lifecycle) -> None:
    assert lifecycle.logs == {"prepare": "prepared\n", "main": "from-init\n"}


def test_the_node_address_is_the_bridge_address_pods_reach_the_host_at(
        lifecycle: Lifecycle) -> None:
    assert lifecycle.node_ip == lifecycle.bridge_ip == "10.88.0.1"


def test_a_second_node_waits_for_the_machine_wide_lock(lifecycle: Lifecycle) -> None:
    assert "another real node holds /tmp/cyclone-real-node.lock" in lifecycle.second_start
    assert lifecycle.second_start_waited >= 1.0
    assert lifecycle.lock_free_after_stop


@pytest.mark.parametrize("aspect", ["sysctls", "mounts", "links", "kubepods", "dirs", "iptables"])
def test_stopping_the_node_restores_the_host(lifecycle: Lifecycle, aspect: str) -> None:
    assert lifecycle.after[aspect] == lifecycle.before[aspect]
