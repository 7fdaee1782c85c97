"""The node side of Cyclone run alone: the node agent (`cyclone node`) and the local-path
provisioner, on its own (`cyclone local-path-provisioner`) or beside the engine
(`cyclone engine --local-path-provisioner`)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from cyclone.components import (
    NOBODY,
    ClusterSource,
    ComponentError,
    checked_volumes_dir,
    node_runtime,
    open_cluster,
    prepared_dir,
)


@dataclass
class NodeOptions:
    cluster: ClusterSource = field(default_factory=ClusterSource)
    data_dir: str = "/var/lib/cyclone-node"
    node_name: str = field(default_factory=lambda: socket.gethostname().lower() or "cyclone-node")
    runtime: str = "host"
    schedule_unbound: bool = False
    heartbeat_seconds: float = 10.0
    log_server_port: int | None = None
    log_client_ca_file: str | None = None
    """The CA of the API server's kubelet client certificate; the log server (started only
    with it and `log_server_port`) answers no one else."""
    sandbox_uid: int = NOBODY
    sandbox_gid: int = NOBODY


async def run_local_path_provisioner(cluster_source: ClusterSource, volumes_dir: str,
                                     node_name: str | None = None) -> None:
    """Run the local-path provisioner alone until cancelled (one replica: what it writes
    is idempotent, so a second one during a rollout does no harm)."""
    from cyclone.node.provisioner import LocalPathProvisioner

    directory = checked_volumes_dir(volumes_dir)
    cluster = await open_cluster(cluster_source)
    try:
        await LocalPathProvisioner(cluster, volumes_dir=directory, node_name=node_name).run()
    finally:
        await cluster.close()


async def run_node(options: NodeOptions) -> None:
    """Run a node agent (the kubelet stand-in) until cancelled."""
    from cyclone.node.agent import run_node_agent

    log_client_ca = log_client_ca_path(options.log_server_port, options.log_client_ca_file)
    runtime = node_runtime(options.runtime, sandbox_uid=options.sandbox_uid,
                           sandbox_gid=options.sandbox_gid, data_dir=prepared_dir(options.data_dir))
    cluster = await open_cluster(options.cluster)
    try:
        await run_node_agent(
            cluster, node_name=options.node_name, data_dir=Path(options.data_dir),
            runtime=runtime, schedule_unbound=options.schedule_unbound,
            heartbeat_seconds=options.heartbeat_seconds,
            log_server_port=options.log_server_port, log_client_ca=log_client_ca,
        )
    finally:
        await cluster.close()


def log_client_ca_path(port: int | None, ca_file: str | None) -> Path | None:
    """The log server's client CA, checked: a port needs a CA and a CA needs a port, since
    the log server serves raw pod logs and must answer only the API server."""
    if port is None and ca_file is None:
        return None
    if ca_file is None:
        raise ComponentError(
            "--log-server-port needs --log-client-ca-file (the CA of the API server's "
            "--kubelet-client-certificate): the log server never serves unauthenticated callers"
        )
    if port is None:
        raise ComponentError("--log-client-ca-file is used only with --log-server-port")
    from cyclone.node.log_server import LogServerError, check_client_ca

    path = Path(ca_file).expanduser().resolve()
    try:
        check_client_ca(path)
    except LogServerError as exc:
        raise ComponentError(f"--log-client-ca-file: {exc}") from None
    return path
