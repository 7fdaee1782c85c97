"""The controller runner: workers draining a work queue into a level-based reconcile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from cyclone.kube import metrics
from cyclone.kube.clock import SYSTEM_CLOCK, Clock
from cyclone.kube.informer import Informer, object_key
from cyclone.kube.workqueue import WorkQueue, WorkQueueShutDown

log = logging.getLogger(__name__)

Reconcile = Callable[[str], Awaitable[float | None]]
KeyFunction = Callable[[dict], "str | Iterable[str] | None"]


class Controller:
    """Runs `reconcile(key)` for queued keys with `workers` concurrent workers.

    A raised exception is logged and the key retried with backoff; a float return requeues
    the key after that many seconds (on `clock`); None means done (backoff reset).

    A caller can wait for the controller to have looked at a key after some moment
    (`requeue_and_wait`): the proof that "nothing happened" was a decision, not a reconcile
    that had not run yet.
    """

    def __init__(
        self, name: str, reconcile: Reconcile, *, workers: int = 4, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.queue = WorkQueue(clock=clock, name=name)
        self._work_duration = metrics.WORKQUEUE_WORK_DURATION.labels(name)
        self._errors = metrics.RECONCILE_ERRORS.labels(name)
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._looking: dict[str, list[asyncio.Future[None]]] = {}

    async def requeue_and_wait(self, key: str) -> None:
        """Queue `key` and return once a reconcile of it that started after this call has
        finished, whatever it decided."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        self.queue.add(key)
        await future

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
        """Reconcile keys one after the other. Between two, the worker lets every other
        task run: a reconcile that finds nothing to write never waits, and a worker taking
        such keys from a long queue would otherwise hold the event loop until it is empty."""
        while True:
            await asyncio.sleep(0)
            try:
                key = await self.queue.get()
            except WorkQueueShutDown:
                return
            looking = self._waiting.pop(key, None)
            if looking:
                self._looking[key] = looking
            started = metrics.monotonic()
            try:
                requeue_after = await self.reconcile(key)
            except Exception:
                log.exception("controller %s: reconcile of %s failed", self.name, key)
                self._errors.inc()
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if requeue_after is not None:
                    self.queue.add_after(key, requeue_after)
            finally:
                self._work_duration.observe(metrics.monotonic() - started)
                for future in self._looking.pop(key, ()):
                    if not future.done():
                        future.set_result(None)
                self.queue.done(key)
