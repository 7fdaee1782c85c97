"""Clients for the clusters the ExecutionCluster objects of the control cluster describe.

An `ExecutionClusterRegistry` watches ExecutionClusters and keeps one Cluster client per
object, built from its `spec.credential`: a new object adds a client, a changed credential
replaces it, a deleted object removes it. Whoever runs per-cluster work (the engine's pod
controllers, the server's log collectors) hears of each change through `on_added` and
`on_removed`. The control cluster itself (`cyclone-control-cluster`) is registered by its
owner and never touched here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.controller import Controller
from cyclone.kube.errors import ApiError
from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

Connect = Callable[[str, dict], Cluster]
Added = Callable[[str, Cluster], None]
Removed = Callable[[str], None]


def connect_remote(name: str, credential: dict) -> Cluster:
    """A RemoteCluster for an ExecutionCluster credential (kubeConfig, or server + auth)."""
    from cyclone.kube.remote import RemoteCluster

    return RemoteCluster.from_credential(credential, name=name)


def credential_fingerprint(credential: dict) -> str:
    return hashlib.sha256(json.dumps(credential, sort_keys=True).encode()).hexdigest()


class ExecutionClusterRegistry:
    """`await run()` keeps `clusters` matching the ExecutionCluster objects until cancelled.

    `problems` names, per ExecutionCluster that has no client, why it has none (for
    instance an unusable credential), so a run aimed at it can fail with that reason.
    """

    def __init__(
        self,
        control: Cluster,
        *,
        on_added: Added,
        on_removed: Removed,
        connect: Connect = connect_remote,
        informer: Informer | None = None,
    ) -> None:
        self.control = control
        self.informer = informer or Informer(control, kinds.EXECUTION_CLUSTER)
        self.clusters: dict[str, Cluster] = {}
        self.problems: dict[str, str] = {}
        self._fingerprints: dict[str, str] = {}
        self._connect = connect
        self._on_added = on_added
        self._on_removed = on_removed
        self.controller = Controller("executionclusters", self.reconcile, workers=1)
        self.controller.enqueue_on(self.informer)
        self._settled = asyncio.Event()

    @property
    def settled(self) -> bool:
        """Whether every ExecutionCluster that existed at start has been reconciled."""
        return self._settled.is_set()

    async def wait_settled(self) -> None:
        await self._settled.wait()

    def known(self, name: str) -> bool:
        """Whether an ExecutionCluster of this name exists (connected or not)."""
        return self.informer.get(None, name) is not None

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.informer.run(), name="informer-ExecutionCluster")
                await self.informer.wait_synced()
                for name in self.informer.keys():
                    await self.reconcile(name)
                self._settled.set()
                group.create_task(self.controller.run(), name="controller-executionclusters")
        finally:
            for name in list(self.clusters):
                await self._drop(name)

    async def reconcile(self, name: str) -> float | None:
        if name == keys.CONTROL_CLUSTER_NAME:
            return None
        obj = self.informer.get(None, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.problems.pop(name, None)
            await self._drop(name)
            return None
        credential = (obj.get("spec") or {}).get("credential") or {}
        fingerprint = credential_fingerprint(credential)
        if self._fingerprints.get(name) == fingerprint:
            return None
        await self._drop(name)
        self._fingerprints[name] = fingerprint
        try:
            cluster = self._connect(name, credential)
        except Exception as exc:  # any unusable credential, typed or not
            reason = exc.message if isinstance(exc, ApiError) else str(exc)
            self.problems[name] = f"unusable credential: {reason}"
            log.warning("execution cluster %s: %s", name, self.problems[name])
            return None
        self.problems.pop(name, None)
        self.clusters[name] = cluster
        log.info("execution cluster %s registered", name)
        self._on_added(name, cluster)
        return None

    async def _drop(self, name: str) -> None:
        self._fingerprints.pop(name, None)
        cluster = self.clusters.pop(name, None)
        if cluster is None:
            return
        log.info("execution cluster %s removed", name)
        self._on_removed(name)
        try:
            await cluster.close()
        except Exception as exc:
            log.debug("closing execution cluster %s: %r", name, exc)
