"""A genuine Kubernetes node beside a control plane: kubelet, containerd, runc, a CNI bridge,
kube-proxy and a cluster DNS.

`start_node(plane, workdir)` starts a private containerd (config, root, state and socket under
`workdir`), imports the OCI archives of `dist/images` into it, creates the CNI bridge with
its gateway address (`RealNode.bridge_ip`, where pods reach the host), and starts the
kubelet built by `scripts/control-plane/build.sh` registered with `plane` as node
`localhost`; it returns once the node is Ready. Pods then run in real runc containers.

Services work as in any cluster: kube-proxy (iptables mode) makes ClusterIPs reachable from
pods and from the host, and dnsmasq on the bridge address answers
`<service>.<namespace>.svc.cluster.local` from the Services' ClusterIPs (`node_dns`); the
kubelet gives pods that nameserver and the cluster's search path. With a plane started with
`pod_network=True`, pods reach the apiserver through `default/kubernetes` (in-cluster config).

The host's loopback services stay the host's own: kube-proxy sets
`net.ipv4.conf.all.route_localnet=1`, so it starts only once the kubelet's KUBE-FIREWALL drops
packets to 127.0.0.0/8 from elsewhere, and the sysctl is put back to the host's value after
its first sync (it sets it once; NodePorts are on the bridge address only, so nothing needs
it). A host whose iptables already hold KUBE-* chains runs another Kubernetes: the node
refuses to start there (`HostRunsKubernetes`). dnsmasq runs as `nobody`.

Only one real node can run on a machine (the kubelet bind-mounts over /var/log/pods and
friends and owns the `kubepods` cgroups): every start takes the flock `LOCK_FILE` and holds
it until `stop()`. Whatever the node changes on the host is journaled first
(`node_host`), and `stop()` undoes it even after a failure part-way; a node left behind by a
killed process is cleaned up by the next start. The lock and the journal live in `STATE_DIR`,
a directory only root can read or write (`node_lock.open_state_dir`).

Launching is synchronous; callers in an event loop run `start_node` in a thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cyclone import __version__
from cyclone.devcluster import node_config
from cyclone.devcluster.node_config import NodeLayout
from cyclone.devcluster.node_dns import (
    CLUSTER_DOMAIN,
    HOSTS_DIR_MODE,
    ServiceRecords,
    dnsmasq_argv,
    resolve,
)
from cyclone.devcluster.node_host import (
    BRIDGE,
    HARD_CODED_DIRS,
    JOURNAL_NAME,
    RUNTIME_DIRS,
    HostChanges,
    read_sysctl,
    restore,
    valid_workdir,
    write_sysctl,
)
from cyclone.devcluster.node_images import (
    Importer,
    archives_to_import,
    ctr,
    import_archives,
    snapshotter_for,
)
from cyclone.devcluster.node_iptables import kube_chains, kube_proxy_synced, localnet_guarded
from cyclone.devcluster.node_lock import (
    LOCK_FILE,
    STATE_DIR,
    HostRunsKubernetes,
    NodeBusy,
    NodeError,
    NodeLock,
)
from cyclone.devcluster.plane import (
    KUBERNETES_SERVICE_IP,
    NODE_BRIDGE_IP,
    SERVICE_CLUSTER_IP_RANGE,
    ControlPlane,
    _terminate,
    default_bin_dir,
    free_port,
)

__all__ = [
    "BRIDGE", "BRIDGE_IP", "CLUSTER_DOMAIN", "DEFAULT_IMAGES", "HARD_CODED_DIRS", "LOCK_FILE",
    "PAUSE_IMAGE", "POD_CIDR", "REQUIRED_IMAGES", "RUNTIME_DIRS", "STATE_DIR",
    "HostRunsKubernetes", "NodeBusy", "NodeError", "NodeLock", "RealNode",
    "clean_up_left_over_node", "missing_node_parts", "start_node",
]

DEFAULT_IMAGES = Path(os.environ.get("CYCLONE_NODE_IMAGES")
                      or Path(__file__).resolve().parents[2] / "dist" / "images")
"""The OCI archives a node imports (`make images`; `CYCLONE_NODE_IMAGES` overrides)."""
NODE_BINARIES = ("kubelet", "kubectl", "kube-proxy")
HOST_COMMANDS = ("containerd", "ctr", "runc", "ip", "mount", "iptables", "conntrack", "dnsmasq")
REQUIRED_IMAGES = ("pause", "toolbox")
"""The archives a node cannot do without: the sandbox image and the tests' stage image."""
PAUSE_IMAGE = f"docker.io/cyclone/pause:{__version__}"
POD_CIDR = "10.88.0.0/16"
BRIDGE_IP = NODE_BRIDGE_IP
COMPONENTS_IN_STOP_ORDER = ("kube-proxy", "dnsmasq", "kubelet", "containerd")
MAX_SOCKET_PATH = 107
ROUTE_LOCALNET = "net.ipv4.conf.all.route_localnet"
WORKDIR_MODE = 0o711
"""Others may pass through the workdir to the cluster DNS's hosts dir (dnsmasq reads it as
`nobody`); everything else in it is root's alone (0700 directories, 0600 files)."""
WORKDIR_SUBDIRS = ("logs", "cni/net.d", "cni/ipam", "containerd", "kubelet", "pki",
                   "volume-plugins", "runc", "host", "dns/hosts", "dns/staging")


def missing_node_parts(bin_dir: Path | None = None, images: Path | None = None,
                       required_images: tuple[str, ...] = REQUIRED_IMAGES) -> list[str]:
    """What this machine lacks to run a node, as words a skip or failure reason can name."""
    directory = bin_dir or default_bin_dir()
    images = images or DEFAULT_IMAGES
    missing = [b for b in NODE_BINARIES if not os.access(directory / b, os.X_OK)]
    missing += [c for c in HOST_COMMANDS if shutil.which(c) is None]
    missing += [f"{node_config.CNI_BIN_DIR}/{p}" for p in node_config.CNI_PLUGINS
                if not os.access(node_config.CNI_BIN_DIR / p, os.X_OK)]
    missing += [f"{images}/{name}.oci.tar" for name in required_images
                if not (images / f"{name}.oci.tar").is_file()]
    if os.geteuid() != 0:
        missing.append("root privileges")
    return missing


@dataclass
class RealNode:
    """A running node. `stop()` ends it and restores the host; it is idempotent."""

    name: str
    bridge_ip: str
    kubeconfig: Path
    workdir: Path
    plane: ControlPlane
    changes: HostChanges
    lock: NodeLock
    owns_lock: bool = True
    """False when the caller passed a lock it holds (and releases) itself."""
    snapshotter: str = "overlayfs"
    stopped: bool = False
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    preexec_fn: Callable[[], None] | None = field(default=None, repr=False)
    service_records: ServiceRecords | None = field(default=None, repr=False)
    startup: dict[str, float] = field(default_factory=dict)
    """Seconds each part of the start took (for reports)."""

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    def logs(self, lines: int = 30) -> str:
        """The last lines of each component's log, for failure messages."""
        return "\n".join(
            f"--- {component} ---\n{_tail(self.log_path(component), lines)}"
            for component in ("containerd", "kubelet", "import", "kube-proxy", "dnsmasq")
        )

    def alive(self) -> bool:
        return bool(self.processes) and all(p.poll() is None for p in self.processes.values())

    def stop(self, timeout: float = 15.0) -> None:
        """Stop kube-proxy, the cluster DNS, the kubelet and containerd, kill what still runs
        in the node's containers, and restore the host (iptables included); raise `NodeError`
        naming anything that could not be undone."""
        if self.stopped:
            return
        self.stopped = True
        problems: list[str] = []
        try:
            if self.service_records is not None:
                self.service_records.stop()
            for component in COMPONENTS_IN_STOP_ORDER:
                proc = self.processes.pop(component, None)
                if proc is not None:
                    _terminate(proc, timeout)
            _delete_node_object(self.plane, self.name)
            problems = restore(self.changes)
            if not problems:
                self.changes.discard()
        finally:
            if self.owns_lock:
                self.lock.release()
        if problems:
            raise NodeError("the node left the host changed: " + "; ".join(problems))

    def __enter__(self) -> RealNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_node(
    plane: ControlPlane,
    workdir: Path,
    images: Path = DEFAULT_IMAGES,
    *,
    name: str = "localhost",
    bin_dir: Path | None = None,
    timeout: float = 120.0,
    lock_timeout: float | None = None,
    lock: NodeLock | None = None,
    only_images: tuple[str, ...] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> RealNode:
    """Start a node registered with `plane`, state and logs in `workdir` (see the module doc).

    Waits for the machine-wide lock (`lock_timeout` seconds, or for ever; or uses `lock`, which
    the caller holds, e.g. to look at the host before and after the node), cleans up a node
    a killed process left behind, and returns once the node is Ready and every archive in
    `images` is imported. `preexec_fn` (default: the plane's) runs in each child before it
    starts. `only_images` (e.g. `("pause", "toolbox")`) imports just those archives: each
    start imports into a fresh containerd, and the large ones take seconds each. On failure
    everything started is stopped and `NodeError` carries the log tails; on a host that runs
    another Kubernetes, `HostRunsKubernetes` names its chains.
    """
    bin_dir = bin_dir or default_bin_dir()
    missing = missing_node_parts(bin_dir, images)
    if missing:
        raise NodeError(f"cannot start a real node, missing: {', '.join(missing)}")
    workdir = workdir.resolve()
    if not valid_workdir(str(workdir)):
        raise NodeError(f"the node's workdir {workdir} must be a directory below the top level "
                        "that holds none of the host paths the node mounts over")
    layout = NodeLayout(workdir=workdir, bridge=BRIDGE, pod_cidr=POD_CIDR, bridge_ip=BRIDGE_IP,
                        prefix_length=int(POD_CIDR.split("/")[1]))
    if len(f"{layout.socket}.ttrpc".encode()) > MAX_SOCKET_PATH:
        raise NodeError(f"the node's workdir {workdir} is too long a path for containerd's "
                        f"socket (at most {MAX_SOCKET_PATH} bytes)")
    owns_lock = lock is None
    if lock is None:
        lock = NodeLock()
        lock.acquire(lock_timeout)
    elif not lock.held:
        raise NodeError("start_node was given a lock that is not held")
    node = RealNode(name=name, bridge_ip=BRIDGE_IP, kubeconfig=workdir / "kubeconfig",
                    workdir=workdir, plane=plane,
                    changes=HostChanges(workdir=str(workdir), socket=str(layout.socket)),
                    lock=lock, owns_lock=owns_lock, preexec_fn=preexec_fn or plane.preexec_fn)
    try:
        clean_up_left_over_node()
        _start(node, layout, archives_to_import(images, only_images), bin_dir, timeout)
    except BaseException as exc:
        logs = node.logs()
        try:
            node.stop()
        except NodeError as stop_error:
            logs += f"\n{stop_error}"
        if isinstance(exc, HostRunsKubernetes):
            raise
        if isinstance(exc, NodeError):
            raise NodeError(f"{exc}\n{logs}") from exc
        if isinstance(exc, Exception):
            raise NodeError(f"the node did not start: {exc}\n{logs}") from exc
        raise
    return node


def clean_up_left_over_node(state_dir: Path = STATE_DIR) -> None:
    """Restore the host from the journal of a node that was never stopped (its process was
    killed, or it is being abandoned on purpose); the caller holds the lock. A journal with
    entries no node writes is kept, and every start refuses, until someone has looked."""
    left = HostChanges.load(state_dir)
    if left is None:
        return
    problems = restore(left)
    if problems:
        raise NodeError("a node left behind by an earlier run could not be cleaned up: "
                        + "; ".join(problems)
                        + f" (check the host, then remove {state_dir / JOURNAL_NAME})")
    left.discard()


def _prepare_workdir(layout: NodeLayout) -> None:
    """The node's directories, closed to others but for the DNS hosts dir (`WORKDIR_MODE`)."""
    workdir = layout.workdir
    for sub in WORKDIR_SUBDIRS:
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    for top in {sub.split("/")[0] for sub in WORKDIR_SUBDIRS}:
        (workdir / top).chmod(0o700)
    for shared in (layout.dns_hosts_dir.parent, layout.dns_hosts_dir):
        shared.chmod(HOSTS_DIR_MODE)
    workdir.chmod(WORKDIR_MODE)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def _refuse_another_kubernetes(changes: HostChanges) -> None:
    """Journal that iptables holds no KUBE-* chain, before the kubelet adds its own; a host
    where it does runs another Kubernetes, whose Service rules kube-proxy would rewrite."""
    chains = kube_chains()
    if chains:
        raise HostRunsKubernetes(
            "this host's iptables already hold KUBE-* chains, so another Kubernetes runs "
            f"here and a real node would rewrite its rules: {', '.join(chains)}")
    changes.record_kube_chains(chains)


def _start(node: RealNode, layout: NodeLayout, archives: list[Path], bin_dir: Path,
           timeout: float) -> None:
    _refuse_another_kubernetes(node.changes)
    _prepare_workdir(layout)
    shutil.copyfile(node.plane.kubeconfig, node.kubeconfig)
    node.kubeconfig.chmod(0o600)
    changes = node.changes
    changes.record_sysctls()
    for path in HARD_CODED_DIRS:
        private = layout.workdir / "host" / path.lstrip("/")
        private.mkdir(parents=True, exist_ok=True)
        changes.bind_mount(private, Path(path))
    for path in RUNTIME_DIRS:
        changes.make_dirs(Path(path))
    changes.record_runtime_dirs()
    changes.create_bridge(layout.bridge, layout.bridge_ip, layout.prefix_length)
    started = time.monotonic()
    _start_dns(node, layout, timeout)
    node.startup["dnsmasq started"] = time.monotonic() - started
    changes.record_cgroups()
    node.snapshotter = snapshotter_for(layout.workdir)
    _write_private(layout.containerd_config, node_config.containerd_config(
        layout, sandbox_image=PAUSE_IMAGE, snapshotter=node.snapshotter))
    _write_private(layout.cni_conf_dir / "10-cyclone.conflist",
                   node_config.cni_network(layout, SERVICE_CLUSTER_IP_RANGE))

    _spawn(node, "containerd", [shutil.which("containerd") or "containerd",
                                f"--config={layout.containerd_config}"])
    _wait_for_containerd(node, layout, timeout)
    import_archives(layout, node.snapshotter, archives[:1], node.log_path("import"))
    importer = Importer(layout, node.snapshotter, archives[1:], node.log_path("import"))
    importer.start()

    port, healthz_port = free_port(), free_port()
    _write_private(layout.resolv_conf, "")
    _write_private(layout.kubelet_config, node_config.kubelet_config(
        layout, port=port, healthz_port=healthz_port, client_ca=node.plane.kubelet_client_ca,
        cluster_domain=CLUSTER_DOMAIN))
    _delete_node_object(node.plane, node.name)
    _spawn(node, "kubelet", [
        str(bin_dir / "kubelet"),
        f"--config={layout.kubelet_config}",
        f"--kubeconfig={node.kubeconfig}",
        f"--hostname-override={node.name}",
        f"--node-ip={layout.bridge_ip}",
        "--container-runtime=remote",
        f"--container-runtime-endpoint=unix://{layout.socket}",
        f"--image-service-endpoint=unix://{layout.socket}",
        "--runtime-request-timeout=5m",
        f"--pod-infra-container-image={PAUSE_IMAGE}",
        f"--root-dir={layout.workdir / 'kubelet'}",
        f"--cert-dir={layout.workdir / 'pki'}",
        "--v=1",
    ])
    waited = time.monotonic()
    _wait_for(node, localnet_guarded, timeout, "the kubelet did not add KUBE-FIREWALL's "
              "rule against packets to 127.0.0.0/8 from elsewhere")
    node.startup["waited for the kubelet's KUBE-FIREWALL"] = time.monotonic() - waited
    _spawn(node, "kube-proxy", [str(bin_dir / "kube-proxy"), *node_config.kube_proxy_args(
        layout, kubeconfig=node.kubeconfig, node_name=node.name,
        healthz_port=free_port(), metrics_port=free_port())])
    waited = time.monotonic()
    _wait_ready(node, timeout)
    node.startup["then waited for the node to be Ready"] = time.monotonic() - waited
    waited = time.monotonic()
    _wait_for_services(node, timeout)
    _put_back_route_localnet(changes)
    node.startup["waited for kube-proxy's first sync and the DNS"] = time.monotonic() - waited
    importer.join()
    if importer.error:
        raise NodeError(importer.error)


def _start_dns(node: RealNode, layout: NodeLayout, timeout: float) -> None:
    """The cluster DNS, once the hosts file holds the Services, so dnsmasq starts with them.
    ClusterIPs are routed into the bridge (the route goes with the bridge), so the host
    reaches them whatever its own routes."""
    subprocess.run(["ip", "route", "add", SERVICE_CLUSTER_IP_RANGE, "dev", layout.bridge,
                    "src", layout.bridge_ip], capture_output=True)
    records = ServiceRecords(node.plane, layout.dns_hosts_dir, layout.dns_staging_dir)
    node.service_records = records
    records.start()
    if not records.synced.wait(timeout):
        raise NodeError(f"the cluster DNS records were not written: {records.error}")
    _spawn(node, "dnsmasq", dnsmasq_argv(
        shutil.which("dnsmasq") or "dnsmasq", listen_address=layout.bridge_ip,
        hosts_dir=layout.dns_hosts_dir, pid_file=layout.workdir / "dnsmasq.pid"))


def _put_back_route_localnet(changes: HostChanges) -> None:
    """kube-proxy turned route_localnet on as it started (only then); NodePorts are on the
    bridge address alone, so the host's own value serves Services as well."""
    recorded = changes.sysctls.get(ROUTE_LOCALNET)
    if recorded is not None and read_sysctl(ROUTE_LOCALNET) != recorded:
        write_sysctl(ROUTE_LOCALNET, recorded)


def _wait_for(node: RealNode, check: Callable[[], bool], timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        _check_alive(node)
        if time.monotonic() > deadline:
            raise NodeError(f"{failure} within {timeout:g}s")
        time.sleep(0.05)


def _wait_for_services(node: RealNode, timeout: float) -> None:
    name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
    _wait_for(node, lambda: kube_proxy_synced() and resolve(
        name, node.bridge_ip, timeout=0.5) == [KUBERNETES_SERVICE_IP], timeout,
        f"kube-proxy did not program iptables or the cluster DNS does not answer {name}")


def _spawn(node: RealNode, component: str, argv: list[str]) -> None:
    log = node.log_path(component).open("ab")
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=node.workdir, start_new_session=True, preexec_fn=node.preexec_fn,
        )
    finally:
        log.close()
    node.processes[component] = proc
    node.changes.record_pid(component, proc.pid)


def _check_alive(node: RealNode) -> None:
    for component, proc in node.processes.items():
        if proc.poll() is not None:
            raise NodeError(f"{component} exited with code {proc.returncode}")


def _wait_for_containerd(node: RealNode, layout: NodeLayout, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not layout.socket.exists():
        _check_alive(node)
        if time.monotonic() > deadline:
            raise NodeError(f"containerd did not open {layout.socket} within {timeout:g}s")
        time.sleep(0.05)
    result = ctr(layout, "version")
    if result.returncode != 0:
        raise NodeError(f"containerd does not answer on {layout.socket}: {result.stderr.strip()}")


def _api(plane: ControlPlane, method: str, path: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    request = urllib.request.Request(
        plane.server + path, method=method, headers={"Authorization": f"Bearer {plane.token}"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _delete_node_object(plane: ControlPlane, name: str) -> None:
    """No stale Node (and its Ready condition) outlives or precedes the kubelet."""
    with contextlib.suppress(OSError, ssl.SSLError):
        _api(plane, "DELETE", f"/api/v1/nodes/{name}")


def _node_ready(plane: ControlPlane, name: str) -> bool:
    try:
        status, body = _api(plane, "GET", f"/api/v1/nodes/{name}")
    except (OSError, ssl.SSLError):
        return False
    if status != 200:
        return False
    conditions = json.loads(body).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _wait_ready(node: RealNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _node_ready(node.plane, node.name):
        _check_alive(node)
        if time.monotonic() > deadline:
            raise NodeError(f"node {node.name} not Ready after {timeout:g}s")
        time.sleep(0.2)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
