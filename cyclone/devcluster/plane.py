"""A genuine Kubernetes control plane on loopback, for tests, benchmarks and `cyclone up`.

It starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler from the binaries
that `scripts/control-plane/build.sh` caches under `~/.cache/cyclone/k8s/bin`, each on a free
127.0.0.1 port, with a private certificate authority, a token file holding one admin token
(group `system:masters`), RBAC, and service-account signing keys. It starts no kubelet: the
node agent registers a Node and runs what the scheduler binds to it, or `node.start_node`
runs a genuine kubelet beside it. The apiserver reaches kubelets and
node agents' log servers with a client certificate signed by the plane's CA
(`kubelet_client_ca`, what a node agent's `log_client_ca` must be); it does not verify their
self-signed serving certificates (no `--kubelet-certificate-authority`).

With `pod_network=True` the plane serves the pods of a real node too (`node.start_node`):
the apiserver listens on every address, advertises the node's bridge address
`NODE_BRIDGE_IP` and keeps the `default/kubernetes` Service's endpoint on it (the default
lease reconciler), and its serving certificate names that address, the Service's ClusterIP
and `kubernetes.default.svc…`, so pods use the in-cluster configuration unchanged. Clients on
the host still use https://127.0.0.1:<port> (the kubeconfig).

Launching is synchronous (child processes and a readiness poll); callers in an event loop
run `start_control_plane` in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cyclone.devcluster.certs import write_certificates

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
ADMIN_USER = "cyclone-admin"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts()))
"""The ClusterIP of `default/kubernetes`: the first address of the service range."""
NODE_BRIDGE_IP = "10.88.0.1"
"""The real node's bridge address (`node.BRIDGE_IP`): where a pod-network plane's apiserver
is advertised, and where pods reach the host."""


class ControlPlaneError(RuntimeError):
    """The control plane could not be started (missing binaries, a component died, timeout)."""


def default_bin_dir() -> Path:
    """Where the control-plane binaries are cached (`CYCLONE_K8S_BIN` overrides)."""
    override = os.environ.get("CYCLONE_K8S_BIN")
    if override:
        return Path(override)
    cache = os.environ.get("CYCLONE_K8S_CACHE") or Path.home() / ".cache" / "cyclone" / "k8s"
    return Path(cache) / "bin"


def missing_binaries(bin_dir: Path | None = None) -> list[str]:
    """The names of the control-plane binaries not present (executable) in `bin_dir`."""
    directory = bin_dir or default_bin_dir()
    return [b for b in BINARIES if not os.access(directory / b, os.X_OK)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ControlPlane:
    """A running control plane. `stop()` ends its processes (apiserver before etcd)."""

    name: str
    workdir: Path
    server: str
    token: str
    kubeconfig: Path
    ca_file: Path
    etcd_endpoint: str
    kubelet_client_ca: Path
    """The CA of the apiserver's client certificate for kubelets: node agents' log servers
    trust it (`NodeAgent(log_client_ca=...)`, `--log-client-ca-file`)."""
    pod_network: bool = False
    """The apiserver is reachable from a real node's pods (see the module doc)."""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    preexec_fn: Callable[[], None] | None = field(default=None, repr=False)

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    def stop(self, timeout: float = 15.0) -> None:
        for component in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self.processes.pop(component, None)
            if proc is not None:
                _terminate(proc, timeout)

    def alive(self) -> bool:
        return bool(self.processes) and all(p.poll() is None for p in self.processes.values())

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen, timeout: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=timeout)


def start_control_plane(
    workdir: Path,
    *,
    name: str = "cyclone-test",
    bin_dir: Path | None = None,
    controller_manager: bool = True,
    scheduler: bool = True,
    timeout: float = 90.0,
    preexec_fn: Callable[[], None] | None = None,
    pod_network: bool = False,
) -> ControlPlane:
    """Start a control plane whose state, certificates, kubeconfig and logs live in `workdir`.

    Returns once `/readyz` answers ok and the `default` namespace exists (and, with the
    controller-manager, once its `default` ServiceAccount exists, so pods are admitted).
    `preexec_fn` runs in each child before it starts (e.g. to tie its life to the caller).
    `pod_network` makes the apiserver reachable from a real node's pods (module doc);
    without it the apiserver listens on loopback only and keeps no endpoints.
    """
    bin_dir = bin_dir or default_bin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        raise ControlPlaneError(
            f"control-plane binaries missing in {bin_dir}: {', '.join(missing)} "
            "(run scripts/control-plane/build.sh)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    pki = write_certificates(workdir / "pki", (NODE_BRIDGE_IP,) if pod_network else ())
    token = secrets.token_hex(16)
    token_file = workdir / "tokens.csv"
    token_file.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    token_file.chmod(0o600)

    etcd_client, etcd_peer, api_port = free_port(), free_port(), free_port()
    etcd_endpoint = f"http://127.0.0.1:{etcd_client}"
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, name=name, server=server, token=token, ca_file=pki.ca_cert)
    plane = ControlPlane(
        name=name, workdir=workdir, server=server, token=token, kubeconfig=kubeconfig,
        ca_file=pki.ca_cert, etcd_endpoint=etcd_endpoint, kubelet_client_ca=pki.ca_cert,
        preexec_fn=preexec_fn, pod_network=pod_network,
    )
    if pod_network:
        addresses = ["--bind-address=0.0.0.0", f"--advertise-address={NODE_BRIDGE_IP}"]
    else:
        addresses = ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                     "--endpoint-reconciler-type=none"]
    try:
        _spawn(plane, bin_dir, "etcd", [
            "--name=default",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_endpoint}",
            f"--advertise-client-urls={etcd_endpoint}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ])
        _spawn(plane, bin_dir, "kube-apiserver", [
            f"--etcd-servers={etcd_endpoint}",
            *addresses,
            f"--secure-port={api_port}",
            "--insecure-port=0",
            f"--cert-dir={workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={token_file}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={pki.service_account_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--enable-priority-and-fairness=false",
            "--allow-privileged=true",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={pki.kubelet_client_cert}",
            f"--kubelet-client-key={pki.kubelet_client_key}",
            "--watch-cache=true",
            "-v=1",
        ])
        _wait_ready(plane, timeout)
        if controller_manager:
            _spawn(plane, bin_dir, "kube-controller-manager", [
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca_cert}",
                "--use-service-account-credentials=false",
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service",
                "--concurrent-gc-syncs=5",
                "--v=1",
            ])
        if scheduler:
            _spawn(plane, bin_dir, "kube-scheduler", [
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                "--v=1",
            ])
        if controller_manager:
            _wait_for(plane, "/api/v1/namespaces/default/serviceaccounts/default", timeout)
    except BaseException:
        plane.stop()
        raise
    return plane


def write_kubeconfig(path: Path, *, name: str, server: str, token: str, ca_file: Path) -> None:
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {
            "cluster": name, "user": ADMIN_USER, "namespace": "default"}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)


def _spawn(plane: ControlPlane, bin_dir: Path, component: str, args: list[str]) -> None:
    log = plane.log_path(component).open("ab")
    try:
        plane.processes[component] = subprocess.Popen(
            [str(bin_dir / component), *args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=plane.workdir, start_new_session=True, preexec_fn=plane.preexec_fn,
        )
    finally:
        log.close()


def _request(plane: ControlPlane, path: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    request = urllib.request.Request(
        plane.server + path, headers={"Authorization": f"Bearer {plane.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _check_alive(plane: ControlPlane) -> None:
    for component, proc in plane.processes.items():
        if proc.poll() is not None:
            tail = _tail(plane.log_path(component))
            raise ControlPlaneError(
                f"{component} exited with code {proc.returncode}; last log lines:\n{tail}"
            )


def _wait_for(plane: ControlPlane, path: str, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        _check_alive(plane)
        try:
            status, body = _request(plane, path)
        except (OSError, ssl.SSLError) as exc:
            last = str(exc)
        else:
            if status == 200:
                return body
            last = f"HTTP {status}: {body[:200]!r}"
        time.sleep(0.1)
    raise ControlPlaneError(f"timed out after {timeout}s waiting for {path}: {last}")


def _wait_ready(plane: ControlPlane, timeout: float) -> None:
    body = _wait_for(plane, "/readyz", timeout)
    if body.strip() != b"ok":
        raise ControlPlaneError(f"/readyz answered {body[:200]!r}")
    namespace = json.loads(_wait_for(plane, "/api/v1/namespaces/default", timeout))
    if namespace.get("metadata", {}).get("name") != "default":
        raise ControlPlaneError("the default namespace was not created")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
