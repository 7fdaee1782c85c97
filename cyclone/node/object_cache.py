"""The Secrets and ConfigMaps the pods of this node reference, as the kubelet keeps them.

Many pods read the same objects (every pod a real API server admits mounts the
`kube-root-ca.crt` ConfigMap), so reading each one per pod would cost a request per pod.
As in the kubelet's "Watch" change-detection strategy, an object that pods of the node
share is kept by a list and a watch of its own (`fieldSelector=metadata.name=<name>`),
started when a second pod references it while the first still holds it, or within
`LINGER_SECONDS` after the last one let it go (pods that come one after the other share it
as much as pods that overlap); later pods read what the watch keeps current, and the watch
stops `LINGER_SECONDS` after the last pod holding the object ends. An object one pod alone
references (the engine's per-pod bound-credentials Secret) is listed each time that pod
asks for it, one request as a GET would be, and holds no watch open.

A miss is never trusted: an object missing when a pod asks for it is listed again, so an
object created just before its pod is found; nor is an object kept without a watch: it is
listed again for the next pod. Secrets are held in memory only while a pod of the node
references them and for `LINGER_SECONDS` after, and are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from types import TracebackType

from cyclone.kube.errors import ApiError, Gone, NotFound
from cyclone.kube.kinds import Kind
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)
WATCH_TIMEOUT_SECONDS = 300
MAX_BACKOFF_SECONDS = 10.0
LINGER_SECONDS = 30.0

ObjectKey = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name)."""


@dataclass
class _Entry:
    kind: Kind
    namespace: str
    name: str
    holders: set[str] = field(default_factory=set)
    object: dict | None = None
    listed: bool = False
    version: str = ""
    watch: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    linger: asyncio.TimerHandle | None = None
    """While no pod holds it: the timer that forgets it."""
    shared: bool = False
    """A pod took it up again while it lingered: it is followed like one pods share."""

    @property
    def selector(self) -> str:
        return f"metadata.name={self.name}"

    def describe(self) -> str:
        return f"{self.kind.kind} {self.namespace}/{self.name}"


class ReferencedObjects:
    """Referenced objects by (kind, namespace, name), each counted by the pods holding it.

    Used as an async context manager, which owns the watches (all stopped on exit). A
    holder is a pod uid: `get` adds the reference, `release` drops every reference of a pod.
    """

    def __init__(self, cluster: Cluster, *, linger_seconds: float = LINGER_SECONDS) -> None:
        self.cluster = cluster
        self.linger_seconds = linger_seconds
        self._entries: dict[ObjectKey, _Entry] = {}
        self._held: dict[str, set[ObjectKey]] = {}
        self._group: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> ReferencedObjects:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for entry in self._entries.values():
            if entry.linger is not None:
                entry.linger.cancel()
            if entry.watch is not None:
                entry.watch.cancel()
        self._entries.clear()
        self._held.clear()
        group, self._group = self._group, None
        if group is not None:
            await group.__aexit__(kind, error, traceback)

    def __len__(self) -> int:
        return len(self._entries)

    def watching(self, kind: Kind, namespace: str, name: str) -> bool:
        """Whether a watch keeps this object current (some pod holds it)."""
        entry = self._entries.get(_key(kind, namespace, name))
        return entry is not None and entry.watch is not None and not entry.watch.done()

    async def get(self, kind: Kind, namespace: str, name: str, *, holder: str) -> dict:
        """The object as its watch keeps it, else as listed now; NotFound when a fresh list
        has it missing.

        The object is shared and read-only.
        """
        key = _key(kind, namespace, name)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(kind, namespace, name)
        elif entry.linger is not None:
            entry.linger.cancel()
            entry.linger, entry.shared = None, True
        entry.holders.add(holder)
        self._held.setdefault(holder, set()).add(key)
        async with entry.lock:
            if entry.watch is None or entry.object is None:
                await self._list(entry)
        if entry.object is None:
            raise NotFound(f'{kind.plural} "{name}" not found')
        return entry.object

    def release(self, holder: str) -> None:
        """Drop every reference of a pod; an object no pod holds any more is forgotten
        `linger_seconds` later, unless a pod takes it up again meanwhile."""
        for key in self._held.pop(holder, set()):
            entry = self._entries.get(key)
            if entry is None:
                continue
            entry.holders.discard(holder)
            if entry.holders:
                continue
            if self.linger_seconds <= 0:
                self._forget(key, entry)
            else:
                entry.linger = asyncio.get_running_loop().call_later(
                    self.linger_seconds, self._forget, key, entry)

    def _forget(self, key: ObjectKey, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]
        if entry.watch is not None:
            entry.watch.cancel()

    async def _list(self, entry: _Entry) -> None:
        """List the object, and follow it from this list on when pods share it (a watch
        that had it missing is replaced, so the object found is not undone by its lag)."""
        was_missing = entry.listed and entry.object is None
        listed = await self.cluster.list(
            entry.kind, entry.namespace, field_selector=entry.selector
        )
        entry.object = listed.items[0] if listed.items else None
        entry.version = listed.resource_version
        entry.listed = True
        if entry.watch is None:
            if len(entry.holders) > 1 or entry.shared:
                self._follow(entry)
        elif was_missing and entry.object is not None:
            self._follow(entry)

    def _follow(self, entry: _Entry) -> None:
        if entry.watch is not None:
            entry.watch.cancel()
        if self._group is None:
            raise RuntimeError("ReferencedObjects is used outside its `async with`")
        entry.watch = self._group.create_task(
            self._watch(entry), name=f"watch-{entry.kind.plural}-{entry.namespace}-{entry.name}"
        )

    async def _watch(self, entry: _Entry) -> None:
        """Apply the object's events from the last list; re-list when the watch breaks."""
        version = entry.version
        delay = 0.2
        while True:
            try:
                while True:
                    async for event in self.cluster.watch(
                        entry.kind, entry.namespace, field_selector=entry.selector,
                        resource_version=version, timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    ):
                        version = event.object["metadata"].get("resourceVersion", version)
                        delay = 0.2
                        if event.type == "DELETED":
                            entry.object = None
                        elif event.type in ("ADDED", "MODIFIED"):
                            entry.object = event.object
            except Gone:
                pass
            except Exception as error:
                log.warning("watch of %s failed: %s", entry.describe(), _reason(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            version = await self._relist(entry)

    async def _relist(self, entry: _Entry) -> str:
        delay = 0.2
        while True:
            try:
                async with entry.lock:
                    listed = await self.cluster.list(
                        entry.kind, entry.namespace, field_selector=entry.selector
                    )
                    entry.object = listed.items[0] if listed.items else None
                    entry.version = listed.resource_version
                    return listed.resource_version
            except Exception as error:
                log.warning("list of %s failed: %s", entry.describe(), _reason(error))
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)


def _reason(error: Exception) -> str:
    """What went wrong, without the message (which could quote the object)."""
    return error.reason if isinstance(error, ApiError) else type(error).__name__


def _key(kind: Kind, namespace: str, name: str) -> ObjectKey:
    return (kind.api_version, kind.kind, namespace, name)
