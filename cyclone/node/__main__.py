"""Run a node agent on its own: `python -m cyclone.node --embedded FILE --data-dir DIR`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
from pathlib import Path

from cyclone.kube.protocol import Cluster
from cyclone.node.agent import run_node_agent
from cyclone.node.runtimes import FakeRuntime, HostRuntime, Runtime


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cyclone.node", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--embedded", type=Path, help="SQLite file of an embedded cluster")
    where.add_argument("--kubeconfig", type=Path, help="kubeconfig of a Kubernetes cluster")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--node-name", default=socket.gethostname())
    parser.add_argument("--runtime", choices=("host", "fake"), default="host")
    parser.add_argument("--schedule-unbound", action="store_true")
    parser.add_argument("--heartbeat-seconds", type=float, default=10)
    parser.add_argument("--log-server-port", type=int, default=None,
                        help="serve pod logs to the API server (needs --log-client-ca-file)")
    parser.add_argument("--log-client-ca-file", type=Path, default=None,
                        help="CA of the API server's kubelet client certificate")
    return parser


def _cluster(options: argparse.Namespace) -> Cluster:
    if options.embedded is not None:
        from cyclone.kube.embedded import EmbeddedCluster

        return EmbeddedCluster(options.embedded)
    from cyclone.kube.remote import RemoteCluster

    return RemoteCluster.from_kubeconfig(options.kubeconfig)


async def _main(options: argparse.Namespace) -> None:
    if (options.log_server_port is None) != (options.log_client_ca_file is None):
        raise SystemExit("--log-server-port and --log-client-ca-file go together: the log "
                         "server answers only the API server's client certificate")
    runtime: Runtime = HostRuntime() if options.runtime == "host" else FakeRuntime()
    cluster = _cluster(options)
    try:
        await run_node_agent(
            cluster, node_name=options.node_name, data_dir=options.data_dir, runtime=runtime,
            schedule_unbound=options.schedule_unbound,
            heartbeat_seconds=options.heartbeat_seconds,
            log_server_port=options.log_server_port,
            log_client_ca=options.log_client_ca_file,
        )
    finally:
        await cluster.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(_parser().parse_args()))


if __name__ == "__main__":
    main()
