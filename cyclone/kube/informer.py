"""List+watch caches of one kind, the way client-go's shared informers keep them."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping

from cyclone.api.selectors import Requirement
from cyclone.kube.errors import ApiError, Gone
from cyclone.kube.kinds import Kind
from cyclone.kube.protocol import Cluster
from cyclone.kube.selectors import parse_label_selector

log = logging.getLogger(__name__)

Handler = Callable[[str, dict, "dict | None"], None]
Indexer = Callable[[dict], "str | None"]
"""The value an object is found by in one index (None: not in that index)."""


def _label_indexer(label: str) -> Indexer:
    return lambda obj: (obj["metadata"].get("labels") or {}).get(label)


def object_key(obj: dict) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else meta["name"]


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return namespace or None, name


class Informer:
    """A cache of one kind kept current by list then watch.

    The watch resumes from the last version seen when a stream ends, re-lists on `Gone`
    (emitting ADDED/MODIFIED/DELETED for what changed meanwhile) and backs off on errors.
    Handlers are synchronous and called in order with `(event_type, obj, old)`.

    `index_labels`: labels whose values `list` finds objects by without looking at the
    others (client-go's indexers), for a controller that asks often for the few objects of
    one owner among many (a run's pods among all pods). `indexers`: named functions of an
    object whose values `by_index` finds objects by, for owners no label names reliably
    (the workflow of a run made with kubectl is in its spec).
    """

    def __init__(
        self,
        cluster: Cluster,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_seconds: float | None = None,
        watch_timeout_seconds: int = 300,
        max_backoff: float = 30.0,
        index_labels: Iterable[str] = (),
        indexers: Mapping[str, Indexer] | None = None,
    ) -> None:
        self.cluster = cluster
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_seconds = resync_seconds
        self._watch_timeout = watch_timeout_seconds
        self._max_backoff = max_backoff
        self._cache: dict[str, dict] = {}
        self._label_indexes = frozenset(index_labels)
        self._indexers: dict[str, Indexer] = {
            **{label: _label_indexer(label) for label in self._label_indexes},
            **(indexers or {})}
        if len(self._indexers) != len(self._label_indexes) + len(indexers or {}):
            raise ValueError("an indexer has the name of an indexed label")
        self._index: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        """{index: {value: keys of the cached objects that have it}}"""
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self.resource_version: str | None = None
        self.last_error: str | None = None
        self.failing_since: float | None = None

    def add_handler(self, handler: Handler) -> None:
        """Register a handler; once synced, it first sees ADDED for every cached object."""
        self._handlers.append(handler)
        if self._synced.is_set():
            for obj in list(self._cache.values()):
                self._call(handler, "ADDED", obj, None)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def unreachable_for(self) -> float:
        """Seconds since this informer's list or watch started failing without a success
        between (0 while it works); `time.monotonic` clock."""
        if self.failing_since is None:
            return 0.0
        return time.monotonic() - self.failing_since

    def get(self, namespace: str | None, name: str) -> dict | None:
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> dict | None:
        return self._cache.get(key)

    def keys(self) -> list[str]:
        return list(self._cache)

    def list(self, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        selector = parse_label_selector(label_selector)
        return [
            obj for obj in self._candidates(selector.requirements)
            if (namespace is None or obj["metadata"].get("namespace") == namespace)
            and selector.matches(obj["metadata"].get("labels"))
        ]

    def by_index(self, index: str, value: str) -> list[dict]:
        """The cached objects whose value in `index` (an indexer or indexed label) is
        `value`."""
        return [self._cache[key] for key in self._index[index].get(value, ())]

    def _candidates(self, requirements: Iterable[Requirement]) -> Iterable[dict]:
        """The cached objects a selector can match: from the index when it requires an
        indexed label to have given values, else all of them."""
        for requirement in requirements:
            if requirement.key not in self._label_indexes:
                continue
            by_value = self._index[requirement.key]
            if requirement.operator in ("=", "in"):
                keys = set().union(*(by_value.get(v, ()) for v in requirement.values))
                return [self._cache[key] for key in keys]
        return self._cache.values()

    def _indexed(self, key: str, obj: dict | None, add: bool) -> None:
        if obj is None or not self._index:
            return
        for name, by_value in self._index.items():
            value = self._indexers[name](obj)
            if value is None:
                continue
            if add:
                by_value.setdefault(value, set()).add(key)
            elif (keys := by_value.get(value)) is not None:
                keys.discard(key)
                if not keys:
                    del by_value[value]

    async def run(self) -> None:
        """Keep the cache current until cancelled."""
        async with asyncio.TaskGroup() as group:
            if self.resync_seconds:
                group.create_task(self._resync_loop(self.resync_seconds))
            group.create_task(self._list_and_watch())

    async def _list_and_watch(self) -> None:
        backoff = 0.05
        while True:
            try:
                if self.resource_version is None:
                    await self._relist()
                    self.last_error = self.failing_since = None
                await self._watch_once()
                self.last_error = self.failing_since = None
                backoff = 0.05
            except Gone:
                log.info("informer %s: resource version expired, re-listing", self.kind.kind)
                self.resource_version = None
            except Exception as exc:
                level = logging.WARNING if isinstance(exc, ApiError | OSError) else logging.ERROR
                self.last_error = str(exc) or type(exc).__name__
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                log.log(level, "informer %s: %r; retrying in %.2fs", self.kind.kind, exc, backoff)
                await asyncio.sleep(backoff * (1 + random.random() / 2))
                backoff = min(backoff * 2, self._max_backoff)

    async def _relist(self) -> None:
        listed = await self.cluster.list(
            self.kind, self.namespace,
            label_selector=self.label_selector, field_selector=self.field_selector,
        )
        fresh = {object_key(obj): obj for obj in listed.items}
        previous = self._cache
        self._cache = fresh
        for by_value in self._index.values():
            by_value.clear()
        for key, obj in fresh.items():
            self._indexed(key, obj, add=True)
        for key, obj in fresh.items():
            old = previous.get(key)
            if old is None:
                self._emit("ADDED", obj, None)
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get(
                "resourceVersion"
            ):
                self._emit("MODIFIED", obj, old)
        for key, old in previous.items():
            if key not in fresh:
                self._emit("DELETED", old, old)
        self.resource_version = listed.resource_version
        self._synced.set()

    async def _watch_once(self) -> None:
        async for event in self.cluster.watch(
            self.kind, self.namespace,
            label_selector=self.label_selector, field_selector=self.field_selector,
            resource_version=self.resource_version, timeout_seconds=self._watch_timeout,
        ):
            obj = event.object
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if event.type != "BOOKMARK":
                self._apply(event.type, obj)
            if version:
                self.resource_version = version

    def _apply(self, event_type: str, obj: dict) -> None:
        key = object_key(obj)
        if event_type == "DELETED":
            old = self._cache.pop(key, None)
            self._indexed(key, old, add=False)
            self._emit("DELETED", obj, old)
            return
        old = self._cache.get(key)
        self._indexed(key, old, add=False)
        self._cache[key] = obj
        self._indexed(key, obj, add=True)
        self._emit("ADDED" if old is None else "MODIFIED", obj, old)

    async def _resync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if self._synced.is_set():
                for obj in list(self._cache.values()):
                    self._emit("MODIFIED", obj, obj)

    def _emit(self, event_type: str, obj: dict, old: dict | None) -> None:
        for handler in list(self._handlers):
            self._call(handler, event_type, obj, old)

    def _call(self, handler: Handler, event_type: str, obj: dict, old: dict | None) -> None:
        try:
            handler(event_type, obj, old)
        except Exception:
            log.exception("informer %s: handler %r failed", self.kind.kind, handler)
