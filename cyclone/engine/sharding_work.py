"""Which shards this engine replica may work on now, and the work in flight per shard.

`ShardWork` is what the engine's controllers consult: a reconcile of a key whose namespace
is in a shard this replica does not hold is skipped, and one that runs does so as a task
of its shard, which is cancelled the moment the shard is lost. A shard is held until a
deadline the lease loop (`sharding_leases.ShardLeases`) sets from each successful renewal
(the renewal's start plus `renew_deadline`); a timer revokes it at that deadline even when
the loop is stuck, and `holds` compares with the clock on every call, so no reconcile of a
shard starts or goes on after the deadline, which comes before any other replica may
consider the Lease expired (`renew_deadline < lease_duration`, as client-go's leader
election has it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Gauge

from cyclone.engine.sharding import shard_of

log = logging.getLogger(__name__)

Reconcile = Callable[[str], Awaitable[float | None]]
NamespaceOf = Callable[[str], "str | None"]

SHARDS_HELD = Gauge("cyclone_engine_shards_held",
                    "Shards of namespaces this engine replica holds (and reconciles).")
SHARDS_TOTAL = Gauge("cyclone_engine_shards", "Shards the namespaces are divided into.")
SHARD_HELD = Gauge("cyclone_engine_shard_held",
                   "1 while this replica holds the shard, else 0.", ["shard"])
WORK_RESTART_SECONDS = 1.0
SHARD_LOSSES = Counter("cyclone_engine_shard_losses",
                       "Shards this replica stopped holding, by why.", ["reason"])


class ShardWork:
    """The shards held by this replica, until when, and the reconciles running in each."""

    def __init__(self, shards: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.shards = shards
        self._clock = clock
        self._until: dict[int, float] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: dict[int, set[asyncio.Task[Any]]] = {}
        self._granted_handlers: list[Callable[[int], None]] = []
        self._changed = asyncio.Event()
        SHARDS_TOTAL.set(shards)
        SHARDS_HELD.set(0)
        for shard in range(shards):
            SHARD_HELD.labels(str(shard)).set(0)

    def shard_of(self, namespace: str) -> int:
        return shard_of(namespace, self.shards)

    def holds(self, shard: int) -> bool:
        """Whether `shard` is held and its deadline has not passed."""
        until = self._until.get(shard)
        return until is not None and self._clock() < until

    def owns(self, namespace: str | None) -> bool:
        """Whether this replica may reconcile objects of `namespace` now."""
        return namespace is not None and self.holds(self.shard_of(namespace))

    def held(self) -> set[int]:
        return {shard for shard in self._until if self.holds(shard)}

    def on_granted(self, handler: Callable[[int], None]) -> None:
        """Call `handler(shard)` each time a shard starts being held (to queue its keys)."""
        self._granted_handlers.append(handler)

    def grant(self, shard: int, until: float) -> None:
        """Hold `shard` until the monotonic time `until` (a renewal moves it forward); an
        `until` already past stops it."""
        if until <= self._clock():
            self.revoke(shard, reason="deadline")
            return
        new = not self.holds(shard)
        self._until[shard] = until
        timer = self._timers.pop(shard, None)
        if timer is not None:
            timer.cancel()
        delay = max(0.0, until - self._clock())
        self._timers[shard] = asyncio.get_running_loop().call_later(
            delay, self._deadline_passed, shard)
        if not new:
            return
        log.info("shard %d held", shard)
        self._update_gauges()
        self._changed.set()
        for handler in list(self._granted_handlers):
            try:
                handler(shard)
            except Exception:
                log.exception("shard %d: handler %r failed", shard, handler)

    def _deadline_passed(self, shard: int) -> None:
        until = self._until.get(shard)
        if until is None:
            return
        if self._clock() < until:
            self._timers[shard] = asyncio.get_running_loop().call_later(
                until - self._clock(), self._deadline_passed, shard)
            return
        log.warning("shard %d: not renewed before its deadline; its work is stopped", shard)
        self.revoke(shard, reason="deadline")

    def revoke(self, shard: int, *, reason: str = "released") -> None:
        """Stop holding `shard` now: no reconcile of it starts, those running are cancelled
        (`drained` waits for them to end)."""
        if shard not in self._until:
            return
        del self._until[shard]
        timer = self._timers.pop(shard, None)
        if timer is not None:
            timer.cancel()
        for task in self._tasks.get(shard, ()):
            task.cancel()
        SHARD_LOSSES.labels(reason).inc()
        log.info("shard %d no longer held (%s)", shard, reason)
        self._update_gauges()
        self._changed.set()

    def revoke_all(self, *, reason: str = "released") -> None:
        for shard in list(self._until):
            self.revoke(shard, reason=reason)

    async def drained(self, shard: int) -> None:
        """Return once no work of `shard` runs any more."""
        while True:
            running = [task for task in self._tasks.get(shard, ()) if not task.done()]
            if not running:
                return
            await asyncio.wait(running)

    def _update_gauges(self) -> None:
        SHARDS_HELD.set(len(self._until))
        for shard in range(self.shards):
            SHARD_HELD.labels(str(shard)).set(1 if shard in self._until else 0)

    async def _run_in_shard(self, shard: int, work: Awaitable[Any]) -> tuple[bool, Any]:
        """(True, result) of `work` run as a task of `shard`; (False, None) when the shard
        was lost and the task cancelled for it."""
        task = asyncio.ensure_future(work)
        tasks = self._tasks.setdefault(shard, set())
        tasks.add(task)
        try:
            return True, await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or current.cancelling() == 0):
                return False, None
            raise
        finally:
            tasks.discard(task)

    def guarded(self, reconcile: Reconcile, namespace_of: NamespaceOf) -> Reconcile:
        """`reconcile` limited to keys of held shards, each run cancelled with its shard.

        A key of a shard not held is dropped (done, no requeue): the replica that takes the
        shard queues every key of it (`on_granted`).
        """

        async def sharded(key: str) -> float | None:
            namespace = namespace_of(key)
            if namespace is None:
                return None
            shard = self.shard_of(namespace)
            if not self.holds(shard):
                return None
            finished, requeue = await self._run_in_shard(shard, reconcile(key))
            return requeue if finished else None

        return sharded

    def owned_only(self, add: Callable[[str], None],
                   namespace_of: NamespaceOf) -> Callable[[str], None]:
        """A work queue's `add` that drops the keys of shards not held, so the events of
        other replicas' namespaces cost no queue round; `guarded` still checks when the
        key is reconciled, since a shard may be lost while its key waits."""

        def add_if_owned(key: str) -> None:
            namespace = namespace_of(key)
            if namespace is not None and self.holds(self.shard_of(namespace)):
                add(key)

        return add_if_owned

    async def while_holding(self, shard: int, work: Callable[[], Awaitable[Any]]) -> None:
        """Run `work()` whenever `shard` is held (the cluster-wide duties go with shard 0),
        cancelling it when the shard is lost; until cancelled. A failure of `work` is
        logged and `work` started again a second later."""
        while True:
            await self._wait_until(shard, held=True)
            try:
                await self._run_in_shard(shard, work())
            except Exception:
                log.exception("work of shard %d failed; starting it again", shard)
                await asyncio.sleep(WORK_RESTART_SECONDS)
                continue
            await self._wait_until(shard, held=False)

    async def _wait_until(self, shard: int, *, held: bool) -> None:
        while self.holds(shard) is not held:
            self._changed.clear()
            await self._changed.wait()
