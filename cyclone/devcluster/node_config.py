"""The configuration of a real node: containerd's, the CNI network's, the kubelet's and
kube-proxy's command line.

Pure functions of the node's layout (no I/O): `node.start_node` writes what they return.
The settings that matter on a shared test machine, and why:

- containerd clamps every container's `oom_score_adj` to its own (`restrict_oom_score_adj`):
  a VM that withholds CAP_SYS_RESOURCE makes runc fail every sandbox that asks for -998.
- The CNI bridge has no masquerading and no default route: pods reach the host only at the
  bridge's own address, which is created before the kubelet starts so a test server can
  bind there, and the Services' ClusterIPs through it (a route for the service range).
- The kubelet serves on the bridge address (its node IP, which the apiserver dials for logs
  and exec) and authenticates callers by client certificate against the control plane's
  kubelet-client CA: only the apiserver gets in, not the pods on the bridge.
- `makeIPTablesUtilChains: true` makes the kubelet add KUBE-FIREWALL, whose rule drops every
  packet to 127.0.0.0/8 that does not come from there: kube-proxy sets
  `net.ipv4.conf.all.route_localnet=1`, which without it lets another machine on the link,
  or a pod with CAP_NET_RAW, reach the host's loopback-only services (CVE-2020-8558).
  Eviction and image GC are relaxed for a shared disk.
- Pods resolve names at the cluster DNS on the bridge address (`node_dns`), with the
  cluster's search path and no search domain of the host (`resolvConf` is an empty file).
- kube-proxy (iptables mode) masquerades all Service traffic: a pod reaching a Service whose
  endpoint is a pod on the same bridge gets the answer back through the host, where the
  translation is undone (the bridge does not pass its frames through iptables). It leaves
  the host's conntrack sysctls alone, serves health and metrics on loopback only, opens
  NodePorts on the bridge address alone (not on the host's other addresses), and reprograms
  iptables at most every quarter second.
- `nodeStatusUpdateFrequency: 2s` makes the node Ready about ten seconds sooner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")


@dataclass(frozen=True)
class NodeLayout:
    """Where a node keeps its state, and the network it gives its pods."""

    workdir: Path
    bridge: str
    pod_cidr: str
    bridge_ip: str
    prefix_length: int

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.workdir / "containerd.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.workdir / "cni" / "net.d"

    @property
    def kubelet_config(self) -> Path:
        return self.workdir / "kubelet.yaml"

    @property
    def resolv_conf(self) -> Path:
        """The kubelet's base resolv.conf: empty, so pods get no search domain of the host."""
        return self.workdir / "resolv.conf"

    @property
    def dns_hosts_dir(self) -> Path:
        return self.workdir / "dns" / "hosts"

    @property
    def dns_staging_dir(self) -> Path:
        return self.workdir / "dns" / "staging"


def containerd_config(layout: NodeLayout, *, sandbox_image: str, snapshotter: str) -> str:
    w = layout.workdir
    return f"""version = 2
root = "{w / 'containerd' / 'root'}"
state = "{w / 'containerd' / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{layout.socket}"
[ttrpc]
  address = "{layout.socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{w / 'containerd' / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  enable_selinux = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "{snapshotter}"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{w / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{layout.cni_conf_dir}"
    max_conf_num = 1
"""


def cni_network(layout: NodeLayout, service_cidr: str) -> str:
    network = {
        "cniVersion": "0.4.0",
        "name": "cyclone-node",
        "plugins": [{
            "type": "bridge", "bridge": layout.bridge, "isGateway": True, "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": layout.pod_cidr, "gateway": layout.bridge_ip}]],
                "routes": [{"dst": service_cidr, "gw": layout.bridge_ip}],
                "dataDir": str(layout.workdir / "cni" / "ipam"),
            },
        }],
    }
    return json.dumps(network, indent=2) + "\n"


def kubelet_config(layout: NodeLayout, *, port: int, healthz_port: int, client_ca: Path,
                   cluster_domain: str) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.bridge_ip,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "failSwapOn": False,
        "clusterDNS": [layout.bridge_ip],
        "clusterDomain": cluster_domain,
        "resolvConf": str(layout.resolv_conf),
        "makeIPTablesUtilChains": True,
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "volumePluginDir": str(layout.workdir / "volume-plugins"),
        "syncFrequency": "10s",
        "nodeStatusUpdateFrequency": "2s",
        "nodeStatusReportFrequency": "1m",
        "fileCheckFrequency": "10s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_args(layout: NodeLayout, *, kubeconfig: Path, node_name: str,
                    healthz_port: int, metrics_port: int) -> list[str]:
    """kube-proxy's arguments (after the executable); `kubeconfig` must be in the workdir:
    `node_host` recognises the node's kube-proxy by that argument."""
    return [
        f"--kubeconfig={kubeconfig}",
        "--proxy-mode=iptables",
        f"--hostname-override={node_name}",
        f"--bind-address={layout.bridge_ip}",
        f"--cluster-cidr={layout.pod_cidr}",
        "--masquerade-all",
        f"--nodeport-addresses={layout.bridge_ip}/32",
        "--conntrack-max-per-core=0",
        "--conntrack-tcp-timeout-established=0",
        "--conntrack-tcp-timeout-close-wait=0",
        "--oom-score-adj=0",
        "--iptables-min-sync-period=250ms",
        f"--healthz-bind-address=127.0.0.1:{healthz_port}",
        f"--metrics-bind-address=127.0.0.1:{metrics_port}",
        "--v=1",
    ]
