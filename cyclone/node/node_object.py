"""The v1 Node this agent registers, built from the machine it runs on."""

from __future__ import annotations

import os
import platform
import socket
from datetime import datetime
from pathlib import Path

from cyclone.node.status import timestamp

LOG_DIR_ANNOTATION = "node.cyclone.dev/log-dir"
KUBELET_VERSION = "v1.20.2"
MAX_PODS = "110"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x"}


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def memory_quantity() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1])}Ki"
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{pages // 1024}Ki"


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return "Linux"


def architecture() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine or "amd64")


def node_capacity() -> dict[str, str]:
    return {"cpu": str(os.cpu_count() or 1), "memory": memory_quantity(), "pods": MAX_PODS}


def node_conditions(now: datetime, ready_since: datetime) -> list[dict]:
    def condition(kind: str, status: str, reason: str, message: str) -> dict:
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": timestamp(now),
                "lastTransitionTime": timestamp(ready_since)}

    return [
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                  "kubelet has sufficient memory available"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                  "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID",
                  "kubelet has sufficient PID available"),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def node_status(
    *, runtime_name: str, now: datetime, ready_since: datetime, log_server_port: int | None
) -> dict:
    capacity = node_capacity()
    machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": node_conditions(now, ready_since),
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": socket.gethostname()},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": log_server_port or 0}},
        "nodeInfo": {
            "machineID": machine_id,
            "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
            "bootID": _read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": platform.release(),
            "osImage": os_image(),
            "containerRuntimeVersion": f"{runtime_name}://0.1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": architecture(),
        },
    }


def node_metadata(node_name: str, log_dir: Path) -> dict:
    return {
        "name": node_name,
        "labels": {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": architecture(),
            "node.cyclone.dev/agent": "true",
        },
        "annotations": {LOG_DIR_ANNOTATION: str(log_dir.resolve())},
    }


def node_object(
    node_name: str,
    log_dir: Path,
    *,
    runtime_name: str,
    now: datetime,
    log_server_port: int | None = None,
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": node_metadata(node_name, log_dir),
        "spec": {},
        "status": node_status(
            runtime_name=runtime_name, now=now, ready_since=now, log_server_port=log_server_port
        ),
    }
