"""Engine replicas in shards (`cyclone engine --shards 4`, each its own process) share a
burst of runs in several namespaces; one replica is SIGKILLed mid-burst. Every run
finishes Succeeded once, with one pod per stage, and the killed replica's shards are
taken over by the others."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from support.clusters import eventually

from cyclone.api import keys
from cyclone.engine.sharding import (
    fair_share,
    namespaces_covering_shards,
    shard_lease_name,
)
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, NotFound
from cyclone.kube.protocol import Cluster

from .harness import BACKENDS, overall, running_env
from .test_crash import ten_stage_dag

SHARDS = 4
REPLICAS = {"embedded": 3, "kube": 3}
RUNS_PER_NAMESPACE = {"embedded": 4, "kube": 2}
STAGES = 10
LEASE_FLAGS = ("--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.3")
PATIENCE = 120.0
ROOT = Path(__file__).parents[2]


def namespaces_covering_every_shard(prefix: str) -> list[str]:
    """One tenant namespace per shard, named from `prefix`."""
    return namespaces_covering_shards(
        (keys.tenant_namespace(f"{prefix}{i}") for i in itertools.count()), SHARDS)


def tenant_of(namespace: str) -> str:
    return namespace.removeprefix(keys.TENANT_NAMESPACE_PREFIX)


async def prepare_namespace(cluster: Cluster, namespace: str) -> None:
    """The namespace, its tenant PVC, ten stages and the workflow `dag`."""
    pvc = keys.tenant_pvc_name(tenant_of(namespace))
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": pvc, "namespace": namespace},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
    ]
    for obj in objects:
        with contextlib.suppress(AlreadyExists):
            await cluster.create(obj)
        if obj["kind"] == "Namespace":
            await eventually(lambda: cluster.get(kinds.NAMESPACE, namespace), timeout=30)
    for index in range(STAGES):
        await cluster.create({
            "apiVersion": keys.API_VERSION, "kind": "Stage",
            "metadata": {"name": f"s{index}", "namespace": namespace},
            "spec": {"pod": {"spec": {"containers": [{
                "name": "main", "image": "busybox",
                "command": ["sh", "-c", f"echo 'stage:s{index}' > /cyclone/results/__result__"],
            }]}}},
        })
    await cluster.create({
        "apiVersion": keys.API_VERSION, "kind": "Workflow",
        "metadata": {"name": "dag", "namespace": namespace},
        "spec": {"stages": ten_stage_dag()},
    })


async def remove_namespace(cluster: Cluster, namespace: str) -> None:
    """Delete what the test made in a shared cluster (no engine is left to clear the runs'
    finalizers)."""
    for run in (await cluster.list(kinds.WORKFLOW_RUN, namespace)).items:
        with contextlib.suppress(NotFound):
            await cluster.patch(kinds.WORKFLOW_RUN, run["metadata"]["name"],
                                {"metadata": {"finalizers": None}}, namespace)
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NAMESPACE, namespace)


async def start_replica(target: Path, identity: str, lease_namespace: str, config: Path,
                        logs: Path) -> asyncio.subprocess.Process:
    where = ["--kubeconfig", str(target)] if target.suffix != ".db" else [
        "--embedded", str(target)]
    log = os.open(logs / f"{identity}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cyclone.cli.main", "engine", *where,
            "--shards", str(SHARDS), "--identity", identity,
            "--lease-namespace", lease_namespace, *LEASE_FLAGS, "--metrics-port", "0",
            "--config", str(config),
            stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        os.close(log)


async def shard_holders(cluster: Cluster, lease_namespace: str) -> dict[int, str | None]:
    leases = {lease["metadata"]["name"]: lease
              for lease in (await cluster.list(kinds.LEASE, lease_namespace)).items}
    return {shard: ((leases.get(shard_lease_name(shard)) or {}).get("spec") or {}).get(
        "holderIdentity") for shard in range(SHARDS)}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_replicas_in_shards_finish_every_run_once_when_one_is_killed(tmp_path, backend):
    replicas, per_namespace = REPLICAS[backend], RUNS_PER_NAMESPACE[backend]
    prefix = f"sh{secrets.token_hex(2)}x"
    namespaces = namespaces_covering_every_shard(prefix)
    lease_namespace = f"shard-leases-{secrets.token_hex(3)}"
    identities = [f"replica-{index}" for index in range(replicas)]
    config = tmp_path / "engine.json"
    config.write_text(json.dumps({"gc_enabled": False, "watch_pod_events": False}))
    logs = tmp_path / "logs"
    logs.mkdir()
    processes: dict[str, asyncio.subprocess.Process] = {}
    async with running_env(tmp_path, with_engine=False, backend=backend) as env:
        cluster = env.cluster
        try:
            for namespace in namespaces:
                await prepare_namespace(cluster, namespace)
            if backend == "kube":
                from support.kube_engine import engine_plane

                target = Path(engine_plane().kubeconfig)
            else:
                target = env.data_dir / "cluster.db"
            for identity in identities:
                processes[identity] = await start_replica(target, identity, lease_namespace,
                                                          config, logs)
            share = fair_share(SHARDS, replicas)

            async def divided() -> dict[int, str | None] | None:
                holders = await shard_holders(cluster, lease_namespace)
                counts = Counter(holders.values())
                if None in counts or any(count > share for count in counts.values()):
                    return None
                return holders

            holders = await eventually(divided, timeout=PATIENCE, interval=0.2)
            victim = Counter(holders.values()).most_common(1)[0][0]
            assert victim is not None
            victim_shards = {shard for shard, holder in holders.items() if holder == victim}
            runs = [(namespace, f"run-{index}") for index in range(per_namespace)
                    for namespace in namespaces]
            for namespace, name in runs:
                await cluster.create({
                    "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"workflowRef": {"name": "dag"}},
                })
            victim_namespaces = [namespaces[shard] for shard in sorted(victim_shards)]

            async def victim_mid_burst() -> bool:
                started = 0
                for namespace in victim_namespaces:
                    started += len((await cluster.list(kinds.POD, namespace)).items)
                return started >= 2

            await eventually(victim_mid_burst, timeout=PATIENCE, interval=0.05)
            unfinished_at_kill = [
                run["metadata"]["name"] for namespace in victim_namespaces
                for run in (await cluster.list(kinds.WORKFLOW_RUN, namespace)).items
                if overall(run).get("phase") not in ("Succeeded", "Failed", "Cancelled")]
            processes[victim].send_signal(signal.SIGKILL)
            await processes[victim].wait()

            async def all_ended() -> list[dict] | None:
                found = []
                for namespace, name in runs:
                    run = await cluster.get(kinds.WORKFLOW_RUN, name, namespace)
                    if overall(run).get("phase") not in ("Succeeded", "Failed", "Cancelled"):
                        return None
                    found.append(run)
                return found

            finished = await eventually(all_ended, timeout=PATIENCE * 2, interval=0.5)
            after = await shard_holders(cluster, lease_namespace)
            pods = []
            for namespace in namespaces:
                pods.extend((await cluster.list(
                    kinds.POD, namespace,
                    label_selector=f"{keys.LABEL_POD_KIND}={keys.POD_KIND_WORKLOAD}")).items)
        finally:
            for process in processes.values():
                if process.returncode is None:
                    process.send_signal(signal.SIGKILL)
                    await process.wait()
            if backend == "kube":
                for namespace in namespaces:
                    await remove_namespace(cluster, namespace)

    assert unfinished_at_kill, "every run of the killed replica had ended before the kill"
    assert [overall(run).get("phase") for run in finished] == ["Succeeded"] * len(runs)
    for run in finished:
        for name, entry in run["status"]["stages"].items():
            assert entry["status"]["phase"] == "Succeeded"
            assert entry["outputs"] == [{"key": "stage", "value": name}]
    per_stage = Counter(
        (p["metadata"]["namespace"], p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN],
         p["metadata"]["labels"][keys.LABEL_STAGE]) for p in pods)
    expected = {(namespace, name, f"s{stage}") for namespace, name in runs
                for stage in range(STAGES)}
    assert set(per_stage) == expected
    assert set(per_stage.values()) == {1}, per_stage.most_common(3)
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert victim not in after.values(), after
    assert all(after[shard] in identities for shard in victim_shards), after
