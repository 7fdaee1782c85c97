"""A work queue of object keys in the client-go manner.

Keys are de-duplicated while waiting; a key is never handed to two workers at once (a key
added while it is being processed is handed out again after `done`); failures are retried
with per-key exponential backoff that `forget` resets.

A queue with a `name` reports its depth, adds, retries and how long keys waited in it
(`cyclone.kube.metrics`, label ``controller``).
"""

from __future__ import annotations

import asyncio
from collections import deque

from cyclone.kube import metrics
from cyclone.kube.clock import SYSTEM_CLOCK, Clock, Timer


class WorkQueueShutDown(Exception):
    """The queue was shut down: workers should return."""


class WorkQueue:
    def __init__(
        self, *, base_delay: float = 0.005, max_delay: float = 300.0, clock: Clock = SYSTEM_CLOCK,
        name: str = "",
    ) -> None:
        self.name = name
        self._depth = metrics.WORKQUEUE_DEPTH.labels(name)
        self._adds = metrics.WORKQUEUE_ADDS.labels(name)
        self._retries = metrics.WORKQUEUE_RETRIES.labels(name)
        self._waited = metrics.WORKQUEUE_QUEUE_DURATION.labels(name)
        self._added_at: dict[str, float] = {}
        self._clock = clock
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, tuple[float, Timer]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._adds.inc()
        if key in self._processing:
            return
        self._enqueue(key)

    def _enqueue(self, key: str) -> None:
        self._queue.append(key)
        self._depth.inc()
        self._added_at[key] = metrics.monotonic()
        self._wake()

    def add_after(self, key: str, seconds: float) -> None:
        """Add the key once `seconds` have passed; the earliest pending time wins."""
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        when = self._clock.monotonic() + seconds
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        timer = self._clock.call_later(seconds, lambda: self._fire(key))
        self._timers[key] = (when, timer)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def scheduled(self, key: str) -> float | None:
        """Seconds until the key's pending `add_after` fires; None when none is pending."""
        pending = self._timers.get(key)
        return None if pending is None else pending[0] - self._clock.monotonic()

    def add_rate_limited(self, key: str) -> None:
        """Add the key after its backoff: 5 ms doubling per failure, up to 5 minutes."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self._retries.inc()
        self.add_after(key, min(self._base_delay * (2**failures), self._max_delay))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str:
        """The next key to process; raises `WorkQueueShutDown` once shut down."""
        while not self._queue:
            if self._shutting_down:
                raise WorkQueueShutDown()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        key = self._queue.popleft()
        self._depth.dec()
        self._processing.add(key)
        self._dirty.discard(key)
        added = self._added_at.pop(key, None)
        if added is not None:
            self._waited.observe(metrics.monotonic() - added)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._enqueue(key)

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._depth.dec(len(self._queue))
        self._queue.clear()
        self._added_at.clear()
        self._dirty.clear()
        self._wake()

    def _wake(self) -> None:
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
