"""An in-memory index of every tenant's WorkflowRuns for the pages: a small summary per run,
kept current by list+watch, ordered by creation time per namespace.

The runs list, the overview and the palette read it instead of listing runs from the
cluster on every request: a page of newest runs is found by bisecting a sorted list and
walking it, never by sorting everything then cutting. Only the summary of a run is kept
(not the object), so ten thousand large runs stay cheap. Subscribers get each change for
live updates. Every query names one namespace: the index never answers across tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping

from cyclone.api import keys
from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, Gone
from cyclone.kube.protocol import Cluster
from cyclone.server.run_stream import RETRY_SECONDS
from cyclone.ui.run_listing import (
    TRIGGER_KINDS,
    NamespaceRuns,
    Page,
    RunFilter,
    RunSummary,
    day_after,
    decode_cursor,
    encode_cursor,
    summarize,
)

__all__ = ["TRIGGER_KINDS", "Page", "RunFilter", "RunIndex", "RunSummary", "Subscription",
           "decode_cursor", "encode_cursor", "run_index", "stopping_run_index", "summarize"]

log = logging.getLogger(__name__)

Change = tuple[str, RunSummary]
"""(`ADDED` | `MODIFIED` | `DELETED`, the run's summary)."""


def _matching(runs: Mapping[str, RunSummary], keys: Iterable[tuple[str, str]],
              where: RunFilter, limit: int) -> list[RunSummary]:
    """The runs of `keys` (in their order) that `where` shows, up to `limit` + 1: the one
    more tells whether another page follows."""
    found: list[RunSummary] = []
    for key in keys:
        run = runs[key[1]]
        if where.matches(run):
            found.append(run)
            if len(found) > limit:
                break
    return found


class Subscription:
    """Changes of one namespace's runs, as they happen, until closed."""

    def __init__(self, index: RunIndex, namespace: str, limit: int = 1000) -> None:
        self.index = index
        self.namespace = namespace
        self.queue: asyncio.Queue[Change] = asyncio.Queue(limit)
        self.overflowed = False

    def offer(self, change: Change) -> None:
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True

    async def get(self) -> Change:
        return await self.queue.get()

    def close(self) -> None:
        self.index.unsubscribe(self)


class RunIndex:
    """Summaries of the WorkflowRuns in every tenant namespace of `cluster`."""

    def __init__(self, cluster: Cluster, *, watch_timeout_seconds: int = 300,
                 max_backoff: float = 30.0, early_end_seconds: float = RETRY_SECONDS
                 ) -> None:
        self.cluster = cluster
        self._early_end = early_end_seconds
        self.resource_version: str | None = None
        self._namespaces: dict[str, NamespaceRuns] = {}
        self._subscribers: dict[str, set[Subscription]] = {}
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._watch_timeout = watch_timeout_seconds
        self._max_backoff = max_backoff

    def start(self) -> None:
        """Begin list+watch in the running loop (once)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(),
                                                                name="ui-run-index")

    async def ready(self, within: float = 10.0) -> None:
        """Start if needed and wait for the first list."""
        self.start()
        await asyncio.wait_for(self._synced.wait(), within)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def run(self) -> None:
        """List, then watch from the list's version for ever: re-list when the version is
        gone, back off after a failure, and pause after a watch that ended early (a cluster
        that closes every watch at once must not make the index spin)."""
        backoff = 0.05
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self.resource_version is None:
                    await self.relist()
                began = loop.time()
                await self._watch_once()
                backoff = 0.05
                if loop.time() - began < self._early_end:
                    await asyncio.sleep(self._early_end)
            except Gone:
                log.info("run index: resource version expired, re-listing")
                self.resource_version = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = logging.WARNING if isinstance(exc, ApiError | OSError) else logging.ERROR
                log.log(level, "run index: %r; retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff * (1 + random.random() / 2))
                backoff = min(backoff * 2, self._max_backoff)

    async def relist(self) -> None:
        """Replace the index with a fresh list, notifying what changed meanwhile."""
        listed = await self.cluster.list(kinds.WORKFLOW_RUN)
        fresh: dict[tuple[str, str], RunSummary] = {}
        for obj in listed.items:
            run = summarize(obj)
            if keys.is_tenant_namespace(run.namespace) and run.name:
                fresh[(run.namespace, run.name)] = run
        for namespace, held in list(self._namespaces.items()):
            for name in list(held.runs):
                if (namespace, name) not in fresh:
                    self._delete(namespace, name)
        for run in fresh.values():
            self._upsert(run)
        self.resource_version = listed.resource_version
        self._synced.set()

    async def _watch_once(self) -> None:
        async for event in self.cluster.watch(kinds.WORKFLOW_RUN,
                                              resource_version=self.resource_version,
                                              timeout_seconds=self._watch_timeout):
            meta = event.object.get("metadata") or {}
            if event.type != "BOOKMARK" and keys.is_tenant_namespace(meta.get("namespace") or ""):
                self.apply(event.type, event.object)
            if meta.get("resourceVersion"):
                self.resource_version = meta["resourceVersion"]

    def _upsert(self, run: RunSummary) -> None:
        held = self._namespaces.setdefault(run.namespace, NamespaceRuns())
        current = held.runs.get(run.name)
        if current == run:
            return
        held.put(run)
        self._notify("ADDED" if current is None else "MODIFIED", run)

    def _delete(self, namespace: str, name: str) -> None:
        held = self._namespaces.get(namespace)
        old = held.drop(name) if held else None
        if old is not None:
            self._notify("DELETED", old)

    def apply(self, event_type: str, obj: dict) -> None:
        """Apply one watch event (for callers that feed the index themselves)."""
        if event_type == "DELETED":
            meta = obj.get("metadata") or {}
            self._delete(meta.get("namespace") or "", meta.get("name") or "")
        else:
            self._upsert(summarize(obj))

    def _notify(self, event_type: str, run: RunSummary) -> None:
        for subscription in list(self._subscribers.get(run.namespace, ())):
            subscription.offer((event_type, run))

    def subscribe(self, namespace: str, limit: int = 1000) -> Subscription:
        """Changes of `namespace` from now on; past `limit` unread ones, later changes are
        dropped and `overflowed` is set."""
        subscription = Subscription(self, namespace, limit)
        self._subscribers.setdefault(namespace, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        held = self._subscribers.get(subscription.namespace)
        if held is not None:
            held.discard(subscription)
            if not held:
                del self._subscribers[subscription.namespace]

    def get(self, namespace: str, name: str) -> RunSummary | None:
        held = self._namespaces.get(namespace)
        return held.runs.get(name) if held else None

    def count(self, namespace: str) -> int:
        held = self._namespaces.get(namespace)
        return len(held.runs) if held else 0

    def runs(self, namespace: str) -> Iterable[RunSummary]:
        """Every run of `namespace`, in no particular order."""
        held = self._namespaces.get(namespace)
        return list(held.runs.values()) if held else []

    def projects(self, namespace: str) -> list[str]:
        held = self._namespaces.get(namespace)
        return sorted(p for p in held.by_project if p) if held else []

    def workflows(self, namespace: str, project: str = "") -> list[tuple[str, str]]:
        held = self._namespaces.get(namespace)
        if not held:
            return []
        return sorted(k for k in held.by_workflow if k[1] and (not project or k[0] == project))

    def newest(self, namespace: str, where: RunFilter | None = None,
               limit: int = 10) -> list[RunSummary]:
        return self.page(namespace, where, limit=limit).runs

    def page(self, namespace: str, where: RunFilter | None = None, *, limit: int = 50,
             older: str | None = None, newer: str | None = None) -> Page:
        """Up to `limit` runs of `namespace` matching `where`, newest first: the first page,
        the page after cursor `older`, or the page before cursor `newer`."""
        where = where or RunFilter()
        held = self._namespaces.get(namespace)
        if held is None:
            return Page([], None, None)
        base = held.base_for(where)
        floor = where.since.isoformat() if where.since else ""
        ceiling = day_after(where.until) if where.until else ""
        top = (ceiling, "") if ceiling else None
        if newer is not None and (after := decode_cursor(newer)) is not None:
            found = _matching(held.runs, base.newer_than(after, ceiling), where, limit)
            more_newer = len(found) > limit
            found = found[:limit]
            found.reverse()
            if not more_newer:
                return self.page(namespace, where, limit=limit)
            return Page(found, encode_cursor(found[0]) if found else None,
                        encode_cursor(found[-1]) if found else None)
        start = top
        if older is not None and (before := decode_cursor(older)) is not None:
            start = min(before, top) if top else before
        found = _matching(held.runs, base.older_than(start, floor), where, limit)
        has_older = len(found) > limit
        found = found[:limit]
        first_page = older is None or decode_cursor(older) is None
        return Page(found,
                    None if first_page or not found else encode_cursor(found[0]),
                    encode_cursor(found[-1]) if has_older and found else None)


INDEX_KEY = "ui_run_index"


def run_index(state) -> RunIndex:
    """The server's one index (made on first use, in the server's loop)."""
    index = state.extras.get(INDEX_KEY)
    if index is None:
        index = state.extras[INDEX_KEY] = RunIndex(state.cluster)
    return index


def stopping_run_index(lifespan: Callable) -> Callable:
    """`lifespan` (an app's lifespan context) that also stops the run index at shutdown,
    before the cluster it watches is closed."""

    @contextlib.asynccontextmanager
    async def wrapped(app):
        async with lifespan(app) as value:
            try:
                yield value
            finally:
                index = app.state.cyclone.extras.get(INDEX_KEY) \
                    if hasattr(app.state, "cyclone") else None
                if index is not None:
                    await index.stop()

    return wrapped
