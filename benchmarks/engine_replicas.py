"""Runs/min for 1 and for 2 engine replicas over the same burst: the throughput series of
`throughput.py --replicas 1,2`.

Each replica is a `cyclone engine` process (`--shards 1` for one replica, today's leader;
`--shards 4` for more), on a fresh embedded store or on its own namespaces of the real
kube-apiserver. This process runs the node agent (fake runtime) and creates N one-stage
runs spread over four tenant namespaces, one per shard, with a few concurrent clients;
runs/min is N over the time from the first creation to the last run seen ended. Every run
must end Succeeded with exactly one pod, or the series fails: the figure to show on a
machine whose two cores the replicas share is that nothing is lost or duplicated and that
throughput does not fall.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from common import median, run_manifest, stage_manifest, workflow_manifest
from stacks import Observer

from cyclone.api import keys
from cyclone.engine.sharding import namespaces_covering_shards, shard_lease_name
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, NotFound
from cyclone.kube.informer import Informer
from cyclone.node.agent import NodeAgent
from cyclone.node.runtimes.fake import FakeRuntime

ROOT = Path(__file__).resolve().parents[1]
SHARDS = 4
LEASE_NAMESPACE = "cyclone"


def shard_namespaces(prefix: str) -> list[str]:
    """One tenant namespace per shard."""
    return namespaces_covering_shards(
        (keys.tenant_namespace(f"{prefix}{i}") for i in itertools.count()), SHARDS)


def _in(namespace: str, obj: dict) -> dict:
    obj["metadata"]["namespace"] = namespace
    return obj


async def prepare_namespace(cluster: Any, namespace: str) -> None:
    """The namespace, its tenant claim, the stage `only` and the workflow `one`."""
    tenant = namespace.removeprefix(keys.TENANT_NAMESPACE_PREFIX)
    with contextlib.suppress(AlreadyExists):
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace,
                                           "labels": {keys.LABEL_TENANT: tenant}}})
    for _ in range(600):
        try:
            await cluster.get(kinds.SERVICE_ACCOUNT, "default", namespace)
            break
        except NotFound:
            if not getattr(cluster, "server", None):
                break
            await asyncio.sleep(0.1)
    for obj in (
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": keys.tenant_pvc_name(tenant), "namespace": namespace},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
        _in(namespace, stage_manifest("only")),
        _in(namespace, workflow_manifest("one", {"only": []})),
    ):
        with contextlib.suppress(AlreadyExists):
            await cluster.create(obj)


def _run(namespace: str, name: str) -> dict:
    return _in(namespace, run_manifest(name, "one"))


async def start_engines(count: int, where: list[str], workdir: Path) -> list[Any]:
    config = workdir / "engine.json"
    config.write_text(json.dumps({"gc_enabled": False, "max_workflowruns": 0,
                                  "pod_pending_timeout_seconds": 0}))
    shards = SHARDS if count > 1 else 1
    processes = []
    for index in range(count):
        log = os.open(workdir / f"engine-{index}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                      0o600)
        try:
            processes.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cyclone.cli.main", "engine", *where,
                "--shards", str(shards), "--identity", f"bench-{index}",
                "--lease-namespace", LEASE_NAMESPACE, "--metrics-port", "0",
                "--config", str(config), "--log-level", "warning",
                stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)}))
        finally:
            os.close(log)
    return processes


async def stop_engines(processes: list[Any]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def engines_hold_everything(cluster: Any, count: int, limit: float) -> None:
    """Wait until the leader Lease (one replica) or every shard Lease (more) is held by
    these replicas, each holding some."""
    names = ["cyclone-engine"] if count == 1 else [shard_lease_name(s) for s in range(SHARDS)]
    deadline = time.monotonic() + limit
    while True:
        holders = {}
        for name in names:
            try:
                lease = await cluster.get(kinds.LEASE, name, LEASE_NAMESPACE)
                holders[name] = (lease.get("spec") or {}).get("holderIdentity")
            except NotFound:
                holders[name] = None
        spread = Counter(holders.values())
        ours = all(str(holder).startswith("bench-") for holder in spread)
        if ours and len(spread) == count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the engine Leases are not all held: {holders}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def observing_runs(cluster: Any) -> AsyncIterator[Observer]:
    observer = Observer()
    runs = Informer(cluster, kinds.WORKFLOW_RUN)
    runs.add_handler(observer.on_run)
    task = asyncio.create_task(runs.run())
    try:
        await runs.wait_synced()
        yield observer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def all_ended(observer: Observer, names: list[str], limit: float) -> None:
    """Wait until the observer has seen every run of `names` end."""
    deadline = time.monotonic() + limit
    while not all(name in observer.run_done for name in names):
        await observer.wait_done(len(observer.run_done) + 1, deadline - time.monotonic())


async def one_series(cluster: Any, where: list[str], workdir: Path, count: int,
                     runs: int, creators: int, limit: float, series: int = 0) -> dict:
    """`count` engine replicas over a burst of `runs` one-stage runs; `series` tells the
    run names of this series from those of others on the same cluster."""
    namespaces = shard_namespaces(f"r{count}{secrets.token_hex(2)}x")
    for namespace in namespaces:
        await prepare_namespace(cluster, namespace)
    processes = await start_engines(count, where, workdir)
    try:
        async with observing_runs(cluster) as observer:
            await engines_hold_everything(cluster, count, limit)
            warm = [(namespace, f"s{series}-warm-{index}")
                    for index, namespace in enumerate(namespaces)]
            for namespace, name in warm:
                await cluster.create(_run(namespace, name))
            await all_ended(observer, [name for _, name in warm], limit)
            names = [(namespaces[index % SHARDS], f"s{series}-burst-{index:05d}")
                     for index in range(runs)]
            pending = iter(names)

            async def creator() -> None:
                for namespace, name in pending:
                    await cluster.create(_run(namespace, name))

            started = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for _ in range(creators):
                    group.create_task(creator())
            await all_ended(observer, [name for _, name in names], limit)
            finished = max(observer.run_done[name] for _, name in names)
        failed = [name for _, name in names if observer.run_phase.get(name) != "Succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} runs did not succeed, e.g. {failed[0]}")
        pods: Counter[str] = Counter()
        for namespace in namespaces:
            for pod in (await cluster.list(kinds.POD, namespace)).items:
                run = (pod["metadata"].get("labels") or {}).get(keys.LABEL_WORKFLOWRUN, "")
                if run.startswith(f"s{series}-burst-"):
                    pods[run] += 1
        duplicated = sum(1 for c in pods.values() if c > 1)
        missing = runs - len(pods)
        if duplicated or missing:
            raise RuntimeError(f"{duplicated} runs with more than one pod, {missing} without")
        return {"replicas": count, "shards": SHARDS if count > 1 else 1, "runs": runs,
                "seconds": finished - started, "per_min": runs / (finished - started) * 60,
                "lost": missing, "duplicated": duplicated}
    finally:
        await stop_engines(processes)


@contextlib.asynccontextmanager
async def embedded_side(workdir: Path) -> AsyncIterator[tuple[Any, list[str]]]:
    """A fresh embedded store and the node agent (fake runtime) on it."""
    from cyclone.kube.embedded import EmbeddedCluster

    path = workdir / "cluster.db"
    cluster = EmbeddedCluster(path, name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    agent = NodeAgent(cluster, node_name="bench", data_dir=workdir / "node",
                      runtime=FakeRuntime(), schedule_unbound=True)
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.registered.wait(), 60)
        yield cluster, ["--embedded", str(path)]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await cluster.close()


@contextlib.asynccontextmanager
async def kube_side(plane: Any, workdir: Path) -> AsyncIterator[tuple[Any, list[str]]]:
    """The plane with Cyclone's CRDs, a node agent (fake runtime) and the local-path
    provisioner, each with its own client."""
    from stacks import _install

    from cyclone.kube.remote import RemoteCluster
    from cyclone.node.provisioner import LocalPathProvisioner

    await _install(plane)
    admin = RemoteCluster.from_kubeconfig(plane.kubeconfig, qps=0)
    agent_client = RemoteCluster.from_kubeconfig(plane.kubeconfig)
    node = f"bench-replicas-{secrets.token_hex(2)}"
    agent = NodeAgent(agent_client, node_name=node, data_dir=workdir / "node",
                      runtime=FakeRuntime(), heartbeat_seconds=5)
    provisioner = LocalPathProvisioner(agent_client, workdir / "node", node_name=node)
    tasks = [asyncio.create_task(agent.run()), asyncio.create_task(provisioner.run())]
    try:
        await asyncio.wait_for(agent.registered.wait(), 60)
        yield admin, ["--kubeconfig", str(plane.kubeconfig)]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await admin.delete(kinds.NODE, node)
        for client in (admin, agent_client):
            with contextlib.suppress(Exception):
                await client.close()


async def replica_series(workdir: Path, plane: Any | None, counts: list[int], runs: int,
                         creators: int, limit: float, reps: int = 1) -> list[dict]:
    """One row per replica count, on the embedded store (`plane` None) or the plane.

    With `reps` > 1 the counts take turns (1, 2, 1, 2, …), so that a machine getting
    busier or quieter weighs on both, and a row gives the median runs/min of its
    repetitions (`per_min_reps` holds them all) and what any of them lost or duplicated."""
    cluster_name = "embedded" if plane is None else "kube-apiserver"
    results: dict[int, list[dict]] = {count: [] for count in counts}
    series = 0
    for _ in range(reps):
        for count in counts:
            where = workdir / f"series-{series}"
            await asyncio.to_thread(where.mkdir, parents=True, exist_ok=True)
            side = embedded_side(where) if plane is None else kube_side(plane, where)
            async with side as (cluster, target):
                results[count].append(await one_series(cluster, target, where, count, runs,
                                                        creators, limit, series))
            series += 1
            print(f"  {cluster_name}: {count} replica(s) done", flush=True)
    rows = []
    for done in results.values():
        rows.append({"cluster": cluster_name, **done[0],
                     "per_min": median([row["per_min"] for row in done]),
                     "per_min_reps": [row["per_min"] for row in done],
                     "lost": sum(row["lost"] for row in done),
                     "duplicated": sum(row["duplicated"] for row in done)})
    return rows
