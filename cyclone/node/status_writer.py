"""Pod statuses written latest-wins, as the kubelet's status manager writes them.

A pod worker only marks its pod changed. A few writers take marked pods from a work queue
(never one pod to two writers at once) and compute each pod's status at the moment they
write it. A pod that ends (Succeeded, Failed) is written at once; a change short of that
(Pending with its containers being created, Running) settles for `settle_seconds` first,
as the kubelet reports container states some time after they change: a stage that runs
for less than that costs one status write instead of three, while a longer one shows as
Running a moment after it started. When the API client is rate limited, changes that pile
up while a pod waits for a writer become one write as well.
The status written never steps back: it is computed from what the runtime reported last,
and a pod's writes never overlap. A failed write is retried with backoff until it
succeeds, the pod is gone, or the pod's worker ends.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Protocol

from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, NotFound
from cyclone.kube.protocol import Cluster
from cyclone.kube.workqueue import WorkQueue, WorkQueueShutDown
from cyclone.node.status import status_patch

log = logging.getLogger(__name__)
DEFAULT_WRITERS = 4
DEFAULT_SETTLE_SECONDS = 0.1
ENDED_PHASES = ("Succeeded", "Failed")
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0


class StatusSource(Protocol):
    """A pod whose status the agent writes (its worker)."""

    uid: str
    name: str
    namespace: str
    published: dict | None
    """The status last written."""

    def current_status(self) -> dict: ...

    def written(self, status: dict, updated: dict) -> None:
        """`status` was written; `updated` is the pod the API answered."""
        ...

    def vanish(self) -> None:
        """The pod is gone from the cluster."""
        ...


class PodStatusWriter:
    """The node's status writes; an async context manager that owns its writers."""

    def __init__(self, cluster: Cluster, *, writers: int = DEFAULT_WRITERS,
                 settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> None:
        self.cluster = cluster
        self.writers = writers
        self.settle_seconds = settle_seconds
        self._queue = WorkQueue(base_delay=FIRST_RETRY_SECONDS, max_delay=MAX_RETRY_SECONDS)
        self._sources: dict[str, StatusSource] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._group: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> PodStatusWriter:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        for index in range(self.writers):
            self._group.create_task(self._write_marked(), name=f"pod-status-writer-{index}")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._queue.shutdown()
        group, self._group = self._group, None
        if group is not None:
            await group.__aexit__(kind, error, traceback)

    def mark(self, source: StatusSource) -> None:
        """The pod's status may have changed: write it now if the pod ended, else once it
        has settled (a later change that ends it is written at once)."""
        self._sources[source.uid] = source
        if self.settle_seconds > 0 and (
                source.current_status().get("phase") not in ENDED_PHASES):
            self._queue.add_after(source.uid, self.settle_seconds)
        else:
            self._queue.add(source.uid)

    def forget(self, source: StatusSource) -> None:
        """The pod's worker ended: nothing more is written for it."""
        if self._sources.get(source.uid) is source:
            del self._sources[source.uid]
            self._locks.pop(source.uid, None)
        self._queue.forget(source.uid)

    async def flush(self, source: StatusSource) -> None:
        """Write the pod's current status now, once, after any write of it in flight."""
        async with self._lock(source.uid):
            await self._write(source)

    def _lock(self, uid: str) -> asyncio.Lock:
        lock = self._locks.get(uid)
        if lock is None:
            lock = self._locks[uid] = asyncio.Lock()
        return lock

    async def _write_marked(self) -> None:
        while True:
            try:
                uid = await self._queue.get()
            except WorkQueueShutDown:
                return
            try:
                source = self._sources.get(uid)
                if source is None:
                    self._queue.forget(uid)
                    continue
                async with self._lock(uid):
                    written = await self._write(source)
                if written:
                    self._queue.forget(uid)
                else:
                    self._queue.add_rate_limited(uid)
            except Exception:
                log.exception("pod uid %s: status not written", uid)
                self._queue.add_rate_limited(uid)
            finally:
                self._queue.done(uid)

    async def _write(self, source: StatusSource) -> bool:
        """Write the status when it differs from the one last written; False on failure."""
        status = source.current_status()
        if status == source.published:
            return True
        try:
            updated = await self.cluster.patch(
                kinds.POD, source.name, status_patch(status), source.namespace,
                subresource="status",
            )
        except NotFound:
            source.vanish()
            return True
        except ApiError as error:
            log.warning("pod %s/%s: status not written: %s", source.namespace, source.name, error)
            return False
        source.written(status, updated)
        return True
