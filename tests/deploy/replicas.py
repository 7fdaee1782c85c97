"""Engine replicas as `cyclone engine` subprocesses, and what the tests read of them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound
from cyclone.kube.leader import LeaseTimings
from cyclone.kube.protocol import Cluster

REPO = Path(__file__).resolve().parents[2]
LEASE_NAMESPACE = "cyclone"
TIMINGS = LeaseTimings(lease_duration=3.0, renew_deadline=2.0, retry_period=0.25)


@dataclass
class Replica:
    identity: str
    process: asyncio.subprocess.Process
    log_path: Path

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    def log(self, tail: int | None = 4000) -> str:
        text = self.log_path.read_text(errors="replace")
        return text if tail is None else text[-tail:]


async def start_replica(
    identity: str, where: list[str], scratch: Path, *, config: dict | None = None
) -> Replica:
    """`cyclone engine` with short lease timings; `where` is `--kubeconfig F`/`--embedded F`."""
    config_path = scratch / "engine.json"
    config_path.write_text(json.dumps(
        config if config is not None else {"gc_enabled": False, "watch_pod_events": False}))
    log_path = scratch / f"{identity}.log"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cyclone.cli.main", "engine", *where,
        "--config", str(config_path), "--lease-namespace", LEASE_NAMESPACE,
        "--identity", identity,
        "--lease-duration", str(TIMINGS.lease_duration),
        "--renew-deadline", str(TIMINGS.renew_deadline),
        "--retry-period", str(TIMINGS.retry_period),
        stdout=asyncio.subprocess.DEVNULL, stderr=log_path.open("wb"),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return Replica(identity, process, log_path)


async def stop_all(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.kill()
    for replica in replicas:
        await replica.process.wait()


async def lease_holder(cluster: Cluster, name: str = "cyclone-engine") -> str | None:
    try:
        lease = await cluster.get(kinds.LEASE, name, LEASE_NAMESPACE)
    except NotFound:
        return None
    return (lease.get("spec") or {}).get("holderIdentity") or None


def pods_per_stage(pods: list[dict], *, phase: str | None = None) -> Counter:
    return Counter(
        (p["metadata"]["labels"][keys.LABEL_WORKFLOWRUN], p["metadata"]["labels"][keys.LABEL_STAGE])
        for p in pods
        if p["metadata"]["labels"].get(keys.LABEL_POD_KIND) == keys.POD_KIND_WORKLOAD
        and (phase is None or (p.get("status") or {}).get("phase") == phase)
    )


async def engine_lease(cluster: Cluster) -> dict:
    """The spec of the engine's lease: holder, acquire and renew times."""
    return (await cluster.get(kinds.LEASE, "cyclone-engine", LEASE_NAMESPACE))["spec"]


def lease_moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
