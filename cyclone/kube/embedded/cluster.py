"""`EmbeddedCluster`: the Cluster protocol over one SQLite file, with Kubernetes semantics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from cyclone.kube import kinds
from cyclone.kube.embedded import apiserver, frozen, jsontext, objects, paging
from cyclone.kube.embedded.current import CurrentObjects
from cyclone.kube.embedded.feed import ChangeFeed
from cyclone.kube.embedded.logs import read_pod_logs
from cyclone.kube.embedded.store import (
    Change,
    Transaction,
    connect,
    kind_key,
    read_transaction,
    write_transaction,
)
from cyclone.kube.errors import Gone, Unavailable
from cyclone.kube.kinds import Kind
from cyclone.kube.metrics import EMBEDDED, counted
from cyclone.kube.patching import apply_patch
from cyclone.kube.protocol import ObjectList, PatchType, WatchEvent
from cyclone.kube.selectors import object_filter

log = logging.getLogger(__name__)
T = TypeVar("T")
_BATCH = 1000
_HISTORY_BATCH = 100
"""Changes of one kind a watch reads back at a time: a chunk of a large run's stages is
~120 KiB of text, so a batch of 1,000 of them would hold ~120 MiB while it is handed out."""
_WRITTEN_CHANGES_KEPT = 1000


class EmbeddedCluster:
    """A single-machine cluster: objects in a SQLite file that several processes may share.

    Lifecycle: `await start()` (or first use, or `async with`) opens the file and starts the
    change feed that serves watches; `await close()` stops it. All SQLite work runs on one
    thread owned by the cluster, so the event loop never blocks on the file.

    Objects of watch events and of write results are read-only (`frozen`) and shared: the
    store keeps the current ones parsed (`CurrentObjects`) and every watcher of a change
    gets the same object. `get` and `list` answer private, mutable copies.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str = "embedded",
        change_log_size: int = 10000,
        poll_interval: float = 0.05,
        pod_gc_interval: float = 5.0,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self._change_log_size = change_log_size
        self._poll_interval = poll_interval
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-sqlite")
        self._conn: sqlite3.Connection | None = None
        self.current_objects = CurrentObjects()
        self._written_changes: OrderedDict[int, Change] = OrderedDict()
        """Changes this process wrote, with their objects, until the feed hands them out."""
        self._feed: ChangeFeed | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._pod_gc_interval = pod_gc_interval
        self._pod_gc_task: asyncio.Task[None] | None = None
        self.pod_gc_passes = 0
        """Completed passes of the orphaned-pod collector."""
        self._start_lock = asyncio.Lock()
        self._closed = False
        self.schedule_on_create: str | None = None
        """The node every pod created without one is assigned to at once (`cyclone up`'s
        one node, whose agent would bind each anyway), saving a write and an event per
        pod; None leaves unbound pods to a scheduler (`NodeAgent(schedule_unbound=...)`)."""

    async def __aenter__(self) -> EmbeddedCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        async with self._start_lock:
            if self._closed:
                raise Unavailable(f"cluster {self.name} is closed")
            if self._conn is not None:
                return
            loop = asyncio.get_running_loop()
            self._conn = await loop.run_in_executor(self._executor, connect, self.path)
            await self._write(self._ensure_default_namespace)
            position = await self._read(lambda tx: tx.current_rv())
            self._feed = ChangeFeed(self._fetch_changes, position, self._poll_interval)
            self._feed_task = asyncio.create_task(self._feed.run(), name=f"{self.name}-feed")
            self._pod_gc_task = asyncio.create_task(self._collect_orphaned_pods(),
                                                    name=f"{self.name}-pod-gc")

    async def _collect_orphaned_pods(self) -> None:
        """Pods deleted on a Node that does not exist go once their grace period ends."""
        while True:
            await asyncio.sleep(self._pod_gc_interval)
            try:
                if await self._read(lambda tx: bool(tx.terminating(kinds.POD))):
                    await self._write(lambda tx: apiserver.collect_orphaned_pods(
                        tx, datetime.now(UTC)))
            except Unavailable:
                return
            except Exception:
                log.exception("embedded cluster %s: collecting orphaned pods failed", self.name)
            self.pod_gc_passes += 1

    async def close(self) -> None:
        self._closed = True
        if self._pod_gc_task is not None:
            self._pod_gc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pod_gc_task
            self._pod_gc_task = None
        if self._feed is not None:
            self._feed.stop()
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
            self._feed_task = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)

    @staticmethod
    def _ensure_default_namespace(tx: Transaction) -> None:
        if tx.get(kinds.NAMESPACE, None, "default") is None:
            apiserver.create(tx, {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "default"}}, None)

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._conn is None:
            await self.start()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as exc:
            raise Unavailable(f"cluster {self.name}: {exc}") from exc
        except RuntimeError as exc:
            if self._closed:
                raise Unavailable(f"cluster {self.name} is closed") from exc
            raise

    async def _write(self, fn: Callable[[Transaction], T]) -> T:
        def run() -> T:
            with write_transaction(self._open_connection(), self._change_log_size,
                                   self.current_objects) as tx:
                result = fn(tx)
            for change in tx.changes:
                self._written_changes[change.rv] = change
            while len(self._written_changes) > _WRITTEN_CHANGES_KEPT:
                self._written_changes.popitem(last=False)
            return result

        result = await self._call(run)
        if self._feed is not None:
            self._feed.notify()
        return result

    def _open_connection(self) -> sqlite3.Connection:
        """The connection, for a call the executor runs; closed meanwhile is Unavailable."""
        if self._conn is None:
            raise Unavailable(f"cluster {self.name} is closed")
        return self._conn

    async def _read(self, fn: Callable[[Transaction], T]) -> T:
        def run() -> T:
            with read_transaction(self._open_connection()) as tx:
                return fn(tx)

        return await self._call(run)

    async def _fetch_changes(self, after: int) -> list[Change]:
        def fetch() -> list[Change]:
            with read_transaction(self._open_connection()) as tx:
                rows = tx.changes_after(after, _BATCH, self._written_changes)
            for row in rows:
                self._written_changes.pop(row.rv, None)
            return rows

        return await self._call(fetch)

    @counted(EMBEDDED, "GET")
    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict:
        obj = await self._read(lambda tx: tx.get_private(kind, namespace, name))
        if obj is None:
            raise apiserver.not_found(kind, name)
        return obj

    @counted(EMBEDDED, "GET")
    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> ObjectList:
        accept = object_filter(label_selector, field_selector, kind.kind)
        if limit or continue_:
            ns = namespace if kind.namespaced else None
            needles = paging.label_needles(label_selector)
            return await self._read(
                lambda tx: paging.read_page(tx, kind, ns, accept, limit, continue_, needles))
        items, rv = await self._read(
            lambda tx: (tx.list(kind, namespace if kind.namespaced else None), tx.current_rv())
        )
        return ObjectList([obj for obj in items if accept(obj)], str(rv))

    @counted(EMBEDDED, "POST", 201)
    async def create(self, obj: dict, *, namespace: str | None = None) -> dict:
        schedule_to = self.schedule_on_create
        return await self._write(lambda tx: apiserver.create(tx, obj, namespace, schedule_to))

    @counted(EMBEDDED, "PUT")
    async def replace(self, obj: dict) -> dict:
        return await self._replace(obj, status_only=False)

    @counted(EMBEDDED, "PUT")
    async def replace_status(self, obj: dict) -> dict:
        return await self._replace(obj, status_only=True)

    async def _replace(self, obj: dict, *, status_only: bool) -> dict:
        kind = objects.kind_for(obj)
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if kind.namespaced else None
        text = jsontext.encode(obj)  # the caller's object copied now, as JSON text
        return await self._write(
            lambda tx: apiserver.update(
                tx, kind, namespace, meta.get("name", ""), None,
                replacement=lambda: jsontext.decode(text), status_only=status_only,
            )
        )

    @counted(EMBEDDED, "PATCH")
    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: dict | list,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: Literal["status"] | None = None,
        resource_version: str | None = None,
    ) -> dict:
        ns = namespace if kind.namespaced else None
        return await self._write(
            lambda tx: apiserver.update(
                tx, kind, ns, name, lambda current: apply_patch(current, patch, patch_type),
                status_only=subresource == "status", precondition_rv=resource_version,
            )
        )

    @counted(EMBEDDED, "DELETE")
    async def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: Literal["Background", "Foreground", "Orphan"] | None = None,
    ) -> dict | None:
        ns = namespace if kind.namespaced else None
        return await self._write(
            lambda tx: apiserver.delete(
                tx, kind, ns, name, grace_period_seconds=grace_period_seconds,
                propagation_policy=propagation_policy,
            )
        )

    @counted(EMBEDDED, "POST", 201)
    async def bind_pod(self, name: str, namespace: str, node_name: str) -> None:
        await self._write(lambda tx: apiserver.bind_pod(tx, name, namespace, node_name))

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        accept = object_filter(label_selector, field_selector, kind.kind)
        selective = bool(label_selector or field_selector)
        ns = namespace if kind.namespaced else None
        key = kind_key(kind)
        if self._conn is None:
            await self.start()
        assert self._feed is not None
        queue = self._feed.subscribe(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds else None
        try:
            if resource_version in (None, "", "0"):
                items, last = await self._read(lambda tx: (tx.list(kind, ns), tx.current_rv()))
                for obj in items:
                    if accept(obj):
                        yield WatchEvent("ADDED", obj)
            else:
                last = int(resource_version)  # type: ignore[arg-type]
            while True:
                batch = await self._read(
                    lambda tx, after=last: self._history(tx, after, key))
                for change in batch:
                    last = change.rv
                    if event := _event_for(change, key, ns, accept, selective):
                        yield event
                if len(batch) < _HISTORY_BATCH:
                    break
            batch, change = [], None  # the history is not held while the watch waits
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(remaining):
                        change = await queue.get()
                except TimeoutError:
                    return
                if change is None:
                    return
                if change.rv <= last:
                    continue
                last = change.rv
                if event := _event_for(change, key, ns, accept, selective):
                    yield event
        except Unavailable:
            if not self._closed:
                raise
        finally:
            self._feed.unsubscribe(queue)

    def _history(self, tx: Transaction, after: int, key: str) -> list[Change]:
        compacted = tx.compacted_rv()
        if after < compacted:
            raise Gone(f"too old resource version: {after} ({compacted + 1})")
        return tx.changes_after(after, _HISTORY_BATCH, self._written_changes, key)

    async def pod_logs(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        follow: bool = False,
        since_bytes: int = 0,
    ) -> AsyncIterator[bytes]:
        async for chunk in read_pod_logs(
            self.get, name, namespace, container=container, follow=follow,
            since_bytes=since_bytes,
        ):
            yield chunk


def _event_for(
    change: Change, key: str, namespace: str | None, accept: Callable[[dict], bool],
    selective: bool = True,
) -> WatchEvent | None:
    """The event a watcher sees, as the watch cache computes it when selectors apply.

    Every watcher of a change gets the same read-only object."""
    if change.kind_key != key or (namespace is not None and change.namespace != namespace):
        return None
    if not selective:
        return WatchEvent(change.type, change.object)  # type: ignore[arg-type]
    now = accept(change.object)
    if change.type != "MODIFIED" or change.old is None:
        return WatchEvent(change.type, change.object) if now else None  # type: ignore[arg-type]
    before = accept(change.old)
    if now and before:
        return WatchEvent("MODIFIED", change.object)
    if now:
        return WatchEvent("ADDED", change.object)
    if before:
        old = change.old
        assert old is not None
        version = change.object["metadata"]["resourceVersion"]
        return WatchEvent("DELETED", frozen.freeze(
            {**old, "metadata": {**old["metadata"], "resourceVersion": version}}))
    return None
