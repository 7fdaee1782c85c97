"""The node agent alone on a real kube-apiserver: pods/min it sustains and its requests per pod.

    python benchmarks/node_agent.py [--pods 1000] [--creators 4] [--own-secrets]
        [--json FILE]

An unthrottled client creates N pods bound to the agent's node (fake runtime, every
container exits at once) as fast as a few concurrent creators can; the agent (its own
client, the default client-side limit of 50 requests/s, burst 100) runs them. Pods/min is N
over the time from the first creation to the last pod seen Succeeded through the
benchmark's own watch. Requests are the agent's calls to its Cluster, per pod (a watch
counts once, as one stream). The ServiceAccount admission gives every pod the projected
`kube-api-access-*` volume, whose `kube-root-ca.crt` ConfigMap all pods share. With
`--own-secrets` each pod also reads a Secret of its own (created just before it, as the
engine creates a stage pod's bound-credentials Secret) into its environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path

from common import machine, table
from counting import CountingCluster, split
from stacks import kube_available, kube_plane, quiet_logs

import cyclone
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.remote import RemoteCluster
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.fake import FakeRuntime

NAMESPACE = "agent-bench"
NODE = "bench-node"


def pod_manifest(name: str, own_secret: bool) -> dict:
    container: dict = {"name": "main", "image": "busybox"}
    if own_secret:
        container["env"] = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {
            "name": f"{name}-bound", "key": "token"}}}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"nodeName": NODE, "restartPolicy": "Never", "containers": [container]},
    }


def secret_manifest(pod: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"{pod}-bound", "namespace": NAMESPACE},
            "stringData": {"token": "not-a-real-token"}}


async def prepare(admin: RemoteCluster) -> None:
    await admin.create({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": NAMESPACE}})
    deadline = time.monotonic() + 60
    while True:
        try:
            await admin.get(kinds.SERVICE_ACCOUNT, "default", NAMESPACE)
            await admin.get(kinds.CONFIG_MAP, "kube-root-ca.crt", NAMESPACE)
            return
        except NotFound:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def follow_succeeded(admin: RemoteCluster, succeeded: dict[str, float],
                           everyone: asyncio.Event, pods: int) -> None:
    listed = await admin.list(kinds.POD, NAMESPACE)
    version = listed.resource_version
    while True:
        async for event in admin.watch(kinds.POD, NAMESPACE, resource_version=version):
            version = event.object["metadata"].get("resourceVersion", version)
            if (event.object.get("status") or {}).get("phase") == "Succeeded":
                succeeded.setdefault(event.object["metadata"]["name"], time.perf_counter())
                if len(succeeded) >= pods:
                    everyone.set()


async def measure(pods: int, creators: int, limit: float, own_secrets: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-agent-") as tmp:
        workdir = Path(tmp)
        async with kube_plane(workdir / "kube") as plane:
            admin = RemoteCluster.from_kubeconfig(plane.kubeconfig, qps=0)
            agent_client = RemoteCluster.from_kubeconfig(plane.kubeconfig)
            calls = CountingCluster(agent_client)
            agent = NodeAgent(calls, node_name=NODE, data_dir=workdir / "node",
                              runtime=FakeRuntime(), heartbeat_seconds=5)
            try:
                await prepare(admin)
                succeeded: dict[str, float] = {}
                everyone = asyncio.Event()
                async with asyncio.TaskGroup() as group:
                    running = group.create_task(agent.run())
                    watching = group.create_task(
                        follow_succeeded(admin, succeeded, everyone, pods))
                    await asyncio.wait_for(agent.registered.wait(), 60)
                    before = calls.snapshot()
                    names = iter(f"p-{i:05d}" for i in range(pods))
                    started = time.perf_counter()

                    async def creator() -> None:
                        for name in names:
                            if own_secrets:
                                await admin.create(secret_manifest(name))
                            await admin.create(pod_manifest(name, own_secrets))

                    async with asyncio.TaskGroup() as creating:
                        for _ in range(creators):
                            creating.create_task(creator())
                    await asyncio.wait_for(everyone.wait(), limit)
                    finished = max(succeeded.values())
                    used = calls.snapshot() - before
                    running.cancel()
                    watching.cancel()
            finally:
                for client in (admin, agent_client):
                    with contextlib.suppress(Exception):
                        await client.close()
    reads, writes = split(used)
    return {"pods": pods, "pods_per_min": pods / (finished - started) * 60,
            "reads_per_pod": reads / pods, "writes_per_pod": writes / pods,
            "calls": dict(used)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000, help="pods created (default 1000)")
    parser.add_argument("--creators", type=int, default=4,
                        help="concurrent clients creating pods (default 4)")
    parser.add_argument("--own-secrets", action="store_true",
                        help="each pod also reads a Secret of its own")
    parser.add_argument("--timeout", type=float, default=900, help="seconds")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if not kube_available():
        print("no kube-apiserver binaries (bash scripts/control-plane/build.sh)")
        return
    quiet_logs()
    print(f"machine: {machine()}")
    print(f"cyclone from {Path(cyclone.__file__).parent}")
    result = asyncio.run(measure(args.pods, args.creators, args.timeout, args.own_secrets))
    print(table(["pods", "pods/min", "agent reads/pod", "agent writes/pod", "calls"],
                [[result["pods"], round(result["pods_per_min"]),
                  f"{result['reads_per_pod']:.2f}", f"{result['writes_per_pod']:.2f}",
                  ", ".join(f"{k} {v}" for k, v in sorted(result["calls"].items()))]]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
