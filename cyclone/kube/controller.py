"""The controller runner: workers draining a work queue into a level-based reconcile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from cyclone.kube.informer import Informer, object_key
from cyclone.kube.workqueue import WorkQueue, WorkQueueShutDown

log = logging.getLogger(__name__)

Reconcile = Callable[[str], Awaitable[float | None]]
KeyFunction = Callable[[dict], "str | Iterable[str] | None"]


class Controller:
    """Runs `reconcile(key)` for queued keys with `workers` concurrent workers.

    A raised exception is logged and the key retried with backoff; a float return requeues
    the key after that many seconds; None means done (backoff reset).
    """

    def __init__(self, name: str, reconcile: Reconcile, *, workers: int = 4) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.queue = WorkQueue()

    def enqueue_on(self, informer: Informer, key_fn: KeyFunction = object_key) -> None:
        """Enqueue the key(s) `key_fn` maps each event's object (and its old state) to."""

        def handler(_event_type: str, obj: dict, old: dict | None) -> None:
            for candidate in (obj, old):
                if candidate is None:
                    continue
                keys = key_fn(candidate)
                if keys is None:
                    continue
                for key in [keys] if isinstance(keys, str) else keys:
                    self.queue.add(key)

        informer.add_handler(handler)

    async def run(self) -> None:
        """Process keys until cancelled; the queue is shut down on the way out."""
        try:
            async with asyncio.TaskGroup() as group:
                for index in range(self.workers):
                    group.create_task(self._work(), name=f"{self.name}-worker-{index}")
        finally:
            self.queue.shutdown()

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except WorkQueueShutDown:
                return
            try:
                requeue_after = await self.reconcile(key)
            except Exception:
                log.exception("controller %s: reconcile of %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if requeue_after is not None:
                    self.queue.add_after(key, requeue_after)
            finally:
                self.queue.done(key)
