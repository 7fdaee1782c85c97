"""Leader election through a coordination.k8s.io/v1 Lease, as client-go does it.

Candidates race to write themselves into `spec.holderIdentity` of one Lease with an
optimistic update (the resourceVersion they read), so at most one write wins. The holder
renews `spec.renewTime` every `retry_period`; a holder that cannot renew within
`renew_deadline` stops leading. The others consider the lease expired only when its
record has not changed for `lease_duration` by *their own* clock (the time they observed
the last change, never the timestamps written in the lease), so clock skew between
machines cannot make two leaders. Because `renew_deadline < lease_duration`, a holder cut
off from the API server stops its work before anyone else may start.

`run_as_leader(...)` runs a work coroutine only while leading and cancels it the moment
leadership is lost; `async with LeaderElector(...).leading():` does the same for a block.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, NotFound
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""Acquisition attempts are spread over `retry_period * [1, 1 + JITTER_FACTOR)` (client-go)."""


class LeadershipLost(Exception):
    """The lease could not be renewed in time or was taken over; the work was cancelled."""


@dataclass(frozen=True)
class LeaseTimings:
    """The three durations of client-go's LeaderElectionConfig, in seconds."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if min(self.lease_duration, self.renew_deadline, self.retry_period) <= 0:
            raise ValueError("lease timings must be positive")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError(f"renew_deadline must be greater than {JITTER_FACTOR} * retry_period")

    @property
    def lease_duration_seconds(self) -> int:
        """What the Lease records: whole seconds, never less than 1."""
        return max(1, round(self.lease_duration))


class Attempt(enum.Enum):
    ACQUIRED = "acquired"
    HELD_BY_OTHER = "held by another candidate"
    FAILED = "failed"


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One candidate for the Lease `namespace/name`, known to others as `identity`.

    `clock` is monotonic seconds (observation times); `now` is the wall clock written
    into the lease for people and other tools to read.
    """

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        timings: LeaseTimings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not identity:
            raise ValueError("a leader election identity must not be empty")
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings or LeaseTimings()
        self._clock = clock
        self._now = now
        self._observed_version: str | None = None
        self._observed_holder: str | None = None
        self._observed_at = 0.0
        self._holding = False

    @property
    def is_leader(self) -> bool:
        """Whether this candidate's last acquire or renew succeeded and was not given up."""
        return self._holding

    @property
    def observed_holder(self) -> str | None:
        """The holder seen in the lease at the last attempt (None when there is none)."""
        return self._observed_holder

    def _observe(self, lease: dict) -> None:
        version = lease.get("metadata", {}).get("resourceVersion")
        if version != self._observed_version:
            self._observed_version = version
            self._observed_at = self._clock()
        self._observed_holder = (lease.get("spec") or {}).get("holderIdentity") or None

    def _lease_spec(self, previous: dict | None) -> dict:
        stamp = micro_time(self._now())
        previous = previous or {}
        transitions = int(previous.get("leaseTransitions") or 0)
        if previous.get("holderIdentity") == self.identity and previous.get("acquireTime"):
            acquired = previous["acquireTime"]
        else:
            acquired = stamp
            if previous.get("holderIdentity"):
                transitions += 1
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.timings.lease_duration_seconds,
            "acquireTime": acquired,
            "renewTime": stamp,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> Attempt:
        """One attempt to become or stay the holder (client-go's tryAcquireOrRenew)."""
        try:
            lease = await self.cluster.get(kinds.LEASE, self.name, self.namespace)
        except NotFound:
            return await self._create()
        except ApiError as exc:
            log.warning("lease %s/%s: cannot read: %s", self.namespace, self.name, exc)
            return Attempt.FAILED
        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        if holder is not None and holder != self.identity and not self._expired():
            self._holding = False
            return Attempt.HELD_BY_OTHER
        updated = {**lease, "spec": {**spec, **self._lease_spec(spec)}}
        try:
            stored = await self.cluster.replace(updated)
        except ApiError as exc:
            log.info("lease %s/%s: update lost: %s", self.namespace, self.name, exc)
            return Attempt.FAILED
        self._observe(stored)
        if holder != self.identity:
            log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)
        self._holding = True
        return Attempt.ACQUIRED

    def _expired(self) -> bool:
        return self._clock() >= self._observed_at + self.timings.lease_duration

    async def _create(self) -> Attempt:
        lease = {
            "apiVersion": kinds.LEASE.api_version,
            "kind": kinds.LEASE.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self._lease_spec(None),
        }
        try:
            stored = await self.cluster.create(lease)
        except AlreadyExists:
            return Attempt.FAILED
        except ApiError as exc:
            log.warning("lease %s/%s: cannot create: %s", self.namespace, self.name, exc)
            return Attempt.FAILED
        self._observe(stored)
        log.info("lease %s/%s created by %s", self.namespace, self.name, self.identity)
        self._holding = True
        return Attempt.ACQUIRED

    async def acquire(self) -> None:
        """Wait until this candidate holds the lease."""
        reported: str | None = None
        while await self.try_acquire_or_renew() is not Attempt.ACQUIRED:
            if self._observed_holder not in (None, reported):
                reported = self._observed_holder
                log.info("lease %s/%s held by %s; %s stands by", self.namespace, self.name,
                         reported, self.identity)
            period = self.timings.retry_period
            await asyncio.sleep(period * (1 + random.random() * JITTER_FACTOR))

    async def keep_renewing(self) -> None:
        """Renew every `retry_period`; return once leadership is lost.

        Lost means: no successful renewal for `renew_deadline`, or the lease names
        someone else.
        """
        last_renewal = self._clock()
        while True:
            await asyncio.sleep(self.timings.retry_period)
            left = self.timings.renew_deadline - (self._clock() - last_renewal)
            attempt = Attempt.FAILED
            if left > 0:
                try:
                    async with asyncio.timeout(left):
                        attempt = await self.try_acquire_or_renew()
                except TimeoutError:
                    attempt = Attempt.FAILED
            if attempt is Attempt.ACQUIRED:
                last_renewal = self._clock()
                continue
            if attempt is Attempt.HELD_BY_OTHER or (
                self._clock() - last_renewal >= self.timings.renew_deadline
            ):
                self._holding = False
                log.warning("lease %s/%s lost by %s (%s)", self.namespace, self.name,
                            self.identity, attempt.value)
                return

    async def release(self) -> None:
        """Give the lease up so another candidate may take it at once (ReleaseOnCancel)."""
        if not self._holding:
            return
        self._holding = False
        try:
            lease = await self.cluster.get(kinds.LEASE, self.name, self.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            stamp = micro_time(self._now())
            released = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1,
                        "renewTime": stamp, "acquireTime": stamp}
            await self.cluster.replace({**lease, "spec": released})
            log.info("lease %s/%s released by %s", self.namespace, self.name, self.identity)
        except ApiError as exc:
            log.warning("lease %s/%s: cannot release: %s", self.namespace, self.name, exc)

    async def lead(self, work: Callable[[], Awaitable[object]]) -> None:
        """Acquire, run `work` while renewing, release when it ends.

        Raises `LeadershipLost` (after cancelling the work) when leadership is lost first;
        an exception of the work propagates as itself.
        """
        await self.acquire()
        lost = False
        try:
            async with asyncio.TaskGroup() as group:
                renewing = group.create_task(self.keep_renewing(), name=f"lease-{self.name}")
                working = group.create_task(_awaited(work), name=f"leader-{self.name}")
                await asyncio.wait({renewing, working}, return_when=asyncio.FIRST_COMPLETED)
                if working.done():
                    renewing.cancel()
                else:
                    lost = True
                    working.cancel()
        except BaseExceptionGroup as group_error:
            if len(group_error.exceptions) == 1:
                raise group_error.exceptions[0] from None
            raise
        finally:
            await _uninterrupted(self.release(), self.timings.renew_deadline)
        if lost:
            raise LeadershipLost(f"lease {self.namespace}/{self.name} lost by {self.identity}")

    @contextlib.asynccontextmanager
    async def leading(self) -> AsyncIterator[LeaderElector]:
        """``async with elector.leading():`` the block runs only while leading.

        The block is cancelled when leadership is lost, and `LeadershipLost` is raised
        in its place.
        """
        await self.acquire()
        body = asyncio.current_task()
        assert body is not None
        lost = asyncio.Event()

        async def watch_lease() -> None:
            await self.keep_renewing()
            lost.set()
            body.cancel()

        renewing = asyncio.create_task(watch_lease(), name=f"lease-{self.name}")
        try:
            yield self
        except asyncio.CancelledError:
            if lost.is_set() and body.uncancel() == 0:
                raise LeadershipLost(
                    f"lease {self.namespace}/{self.name} lost by {self.identity}"
                ) from None
            raise
        finally:
            renewing.cancel()
            await asyncio.wait({renewing})
            await _uninterrupted(self.release(), self.timings.renew_deadline)
        if lost.is_set():
            raise LeadershipLost(f"lease {self.namespace}/{self.name} lost by {self.identity}")


async def _awaited(work: Callable[[], Awaitable[object]]) -> None:
    await work()


async def _uninterrupted(step: Awaitable[None], limit: float) -> None:
    """Finish `step` even when the caller is being cancelled (bounded by `limit` seconds)."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.wait_for(asyncio.shield(task), limit)
    except TimeoutError:
        task.cancel()
    except asyncio.CancelledError:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, limit)
        raise


async def run_as_leader(
    cluster: Cluster,
    namespace: str,
    name: str,
    identity: str,
    work: Callable[[], Awaitable[object]],
    timings: LeaseTimings | None = None,
    *,
    reelect: bool = True,
    on_started_leading: Callable[[], None] | None = None,
) -> None:
    """Run `work` whenever this candidate leads; cancel it when leadership is lost.

    With `reelect` (the default) a candidate that lost the lease campaigns again and, when
    it wins, calls `work` afresh (so `work` should build its state anew each time).
    Without it, `LeadershipLost` is raised. Returns when `work` returns while leading.
    """
    elector = LeaderElector(cluster, namespace, name, identity, timings)

    async def started() -> None:
        if on_started_leading is not None:
            on_started_leading()
        await work()

    while True:
        try:
            await elector.lead(started)
            return
        except LeadershipLost:
            if not reelect:
                raise
            log.warning("%s lost leadership of %s/%s; campaigning again", identity,
                        namespace, name)
