"""The lease loop of a sharded engine replica: it keeps this replica's own Lease, renews
the shard Leases it holds, and gives up or takes shards by the fair-share rule of
`cyclone.engine.sharding`.

Every `retry_period` one round lists the Leases of the lease namespace (one request),
renews what it holds (one conditional update per Lease: the resourceVersion it listed, so
of two writers one loses), then releases and acquires as `plan_shards` says. Holding a
shard is granted to `ShardWork` until the start of the successful write plus
`renew_deadline`; a renewal that fails leaves that deadline to run out, and `ShardWork`
stops the shard's work when it does. A shard released on purpose is stopped first and
its in-flight work awaited, and only then is the Lease cleared, so the replica that takes
it next never overlaps with this one. On the way out (cancellation) every shard is
released the same way and the replica's own Lease deleted, so the others take over within
a round instead of a lease duration.

The leader Lease (`cyclone-engine`) tells which way the engine runs. Sharded replicas hold
it together under the holder ``shards/<N>`` (`mode_holder`), each renewing it every round,
and work only while their own last renewal of it is within `renew_deadline`, as for a
shard. So a leader (`--shards 1`, which campaigns for the same Lease) never starts while
sharded replicas work, sharded replicas never start while a leader works, and replicas of
another N wait until the last of the old N has stopped: a rolling update that changes the
mode or N never has two engines reconcile one namespace. The Lease is never released by a
sharded replica (another may still work); after the last one it expires.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cyclone.engine.sharding import (
    REPLICA_LEASE_PREFIX,
    LeaseObservations,
    plan_shards,
    replica_lease_name,
    shard_lease_name,
    shard_of_lease,
)
from cyclone.engine.sharding_work import ShardWork
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, NotFound
from cyclone.kube.leader import LeaseTimings, micro_time
from cyclone.kube.protocol import Cluster

log = logging.getLogger(__name__)

SHARDS_ANNOTATION = "cyclone.dev/shards"
"""On a replica's own Lease: how many shards it divides the namespaces into (only replicas
of the same number count in one another's fair share)."""
ROUND_JITTER = 0.2
"""Rounds are spread over `retry_period * [1, 1 + ROUND_JITTER)`."""


def _holder(lease: dict) -> str | None:
    return (lease.get("spec") or {}).get("holderIdentity") or None


def _shards_of(lease: dict) -> int | None:
    value = ((lease.get("metadata") or {}).get("annotations") or {}).get(SHARDS_ANNOTATION)
    return int(value) if value and value.isdigit() else None


def mode_holder(shards: int) -> str:
    """The holder sharded replicas of `shards` shards write in the leader Lease."""
    return f"shards/{shards}"


class ShardLeases:
    """Replica `identity`'s leases in `namespace`, driving `work` until cancelled."""

    def __init__(
        self,
        cluster: Cluster,
        work: ShardWork,
        namespace: str,
        identity: str,
        timings: LeaseTimings | None = None,
        *,
        mode_lease: str = "cyclone-engine",
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not identity:
            raise ValueError("a replica identity must not be empty")
        self.cluster = cluster
        self.work = work
        self.namespace = namespace
        self.identity = identity
        self.timings = timings or LeaseTimings()
        self._clock = clock
        self._now = now
        self._observed = LeaseObservations(self.timings.lease_duration)
        self.mode_lease = mode_lease
        self.mode = mode_holder(work.shards)
        self._mode_renewed: float | None = None
        """The start of this replica's last successful write of the leader Lease."""
        self.rounds = 0

    @property
    def replica_lease(self) -> str:
        return replica_lease_name(self.identity)

    async def run(self) -> None:
        """Hold this replica's fair share of the shards until cancelled, then release."""
        try:
            while True:
                try:
                    async with asyncio.timeout(self.timings.renew_deadline):
                        await self.round()
                except TimeoutError:
                    log.warning("shard leases: a round took longer than %.1fs",
                                self.timings.renew_deadline)
                except ApiError as exc:
                    log.warning("shard leases: cannot list the Leases of %s: %s",
                                self.namespace, exc)
                self.rounds += 1
                period = self.timings.retry_period
                await asyncio.sleep(period * (1 + random.random() * ROUND_JITTER))
        finally:
            await _bounded(self.release_all(), self.timings.renew_deadline)

    async def round(self) -> None:
        """One round: observe, renew, release the excess, acquire up to the share."""
        listed = await self.cluster.list(kinds.LEASE, self.namespace)
        now = self._clock()
        leases = {lease["metadata"]["name"]: lease for lease in listed.items}
        for name, lease in leases.items():
            self._observed.observe(name, lease["metadata"].get("resourceVersion"), now)
        self._observed.keep_only(leases)
        shard_leases = {shard: lease for name, lease in leases.items()
                        if (shard := shard_of_lease(name, self.work.shards)) is not None}
        live: set[str] = set()
        for name, lease in leases.items():
            if not name.startswith(REPLICA_LEASE_PREFIX) or name == self.replica_lease:
                continue
            if _holder(lease) and not self._observed.expired(name, now):
                if _shards_of(lease) == self.work.shards:
                    live.add(_holder(lease) or "")
            elif self._observed.expired(name, now):
                await self._delete_expired(lease)
        await self._renew_or_create(self.replica_lease, leases.get(self.replica_lease))
        if not await self._renew_mode(leases.get(self.mode_lease), now):
            return
        for shard in sorted(self.work.held()):
            await self._renew_shard(shard, shard_leases.get(shard))
        taken = {
            shard: holder for shard, lease in shard_leases.items()
            if (holder := _holder(lease)) and holder != self.identity
            and not self._observed.expired(shard_lease_name(shard), now)
        }
        plan = plan_shards(self.identity, self.work.shards, self.work.held(), taken, live)
        for shard in plan.release:
            await self._release_shard(shard)
        for shard in plan.acquire:
            await self._acquire_shard(shard, shard_leases.get(shard))

    async def _renew_mode(self, lease: dict | None, now: float) -> bool:
        """Renew the leader Lease as one of the sharded replicas; False (and every shard
        stopped) while a leader or replicas of another N hold it."""
        holder = _holder(lease) if lease is not None else None
        if holder not in (None, self.mode) and not self._observed.expired(self.mode_lease,
                                                                          now):
            if self.work.held() or self._mode_renewed is not None:
                log.warning("the Lease %s is held by %s: this replica stands by", self.mode_lease,
                            holder)
            self._mode_renewed = None
            self.work.revoke_all(reason="mode")
            return False
        started = self._clock()
        written = await self._renew_or_create(self.mode_lease, lease, holder=self.mode)
        if written is None and lease is not None:
            try:
                fresh = await self.cluster.get(kinds.LEASE, self.mode_lease, self.namespace)
            except ApiError:
                fresh = None
            if fresh is not None and _holder(fresh) == self.mode:
                started = self._clock()
                written = await self._renew_or_create(self.mode_lease, fresh,
                                                      holder=self.mode)
        if written is not None:
            self._mode_renewed = started
        return self._mode_renewed is not None

    def _until(self, started: float) -> float:
        """When holding a shard written at `started` ends: its deadline, or the leader
        Lease's if that comes first."""
        mode = self._mode_renewed if self._mode_renewed is not None else started
        return min(started, mode) + self.timings.renew_deadline

    async def _renew_shard(self, shard: int, lease: dict | None) -> None:
        if lease is None or _holder(lease) != self.identity:
            log.warning("shard %d: its Lease %s; stopping its work", shard,
                        "is gone" if lease is None else f"is held by {_holder(lease)}")
            self.work.revoke(shard, reason="taken")
            return
        started = self._clock()
        if await self._renew_or_create(shard_lease_name(shard), lease) is not None:
            self.work.grant(shard, self._until(started))

    async def _acquire_shard(self, shard: int, lease: dict | None) -> None:
        started = self._clock()
        if await self._renew_or_create(shard_lease_name(shard), lease) is not None:
            log.info("%s acquired shard %d", self.identity, shard)
            self.work.grant(shard, self._until(started))

    async def _release_shard(self, shard: int) -> None:
        """Stop the shard's work, wait for it to end, then clear the Lease's holder."""
        self.work.revoke(shard, reason="released")
        await self.work.drained(shard)
        await self._clear(shard_lease_name(shard))

    async def release_all(self) -> None:
        """Give up every shard (work stopped first) and this replica's own Lease."""
        held = sorted(self.work.held())
        self.work.revoke_all(reason="released")
        for shard in held:
            await self.work.drained(shard)
            await self._clear(shard_lease_name(shard))
        try:
            await self.cluster.delete(kinds.LEASE, self.replica_lease, self.namespace)
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("cannot delete Lease %s: %s", self.replica_lease, exc)

    def _spec(self, previous: dict | None, holder: str) -> dict:
        stamp = micro_time(self._now())
        previous = previous or {}
        transitions = int(previous.get("leaseTransitions") or 0)
        acquired = previous.get("acquireTime")
        if previous.get("holderIdentity") != holder or not acquired:
            acquired = stamp
            if previous.get("holderIdentity"):
                transitions += 1
        return {**previous, "holderIdentity": holder,
                "leaseDurationSeconds": self.timings.lease_duration_seconds,
                "acquireTime": acquired, "renewTime": stamp, "leaseTransitions": transitions}

    async def _renew_or_create(self, name: str, lease: dict | None, *,
                               holder: str | None = None) -> dict | None:
        """The Lease written with `holder` (this replica by default) as holder, conditional
        on the version listed; None when another write came first or the request failed."""
        holder = holder or self.identity
        try:
            if lease is None:
                meta: dict = {"name": name, "namespace": self.namespace}
                if name == self.replica_lease:
                    meta["annotations"] = {SHARDS_ANNOTATION: str(self.work.shards)}
                return await self.cluster.create({
                    "apiVersion": kinds.LEASE.api_version, "kind": kinds.LEASE.kind,
                    "metadata": meta, "spec": self._spec(None, holder)})
            return await self.cluster.replace(
                {**lease, "spec": self._spec(lease.get("spec"), holder)})
        except AlreadyExists:
            return None
        except ApiError as exc:
            log.info("Lease %s/%s: write lost: %s", self.namespace, name, exc)
            return None

    async def _clear(self, name: str) -> None:
        """Clear the holder of Lease `name` if it still names this replica."""
        try:
            lease = await self.cluster.get(kinds.LEASE, name, self.namespace)
            if _holder(lease) != self.identity:
                return
            stamp = micro_time(self._now())
            spec = {**(lease.get("spec") or {}), "holderIdentity": None,
                    "leaseDurationSeconds": 1, "renewTime": stamp, "acquireTime": stamp}
            await self.cluster.replace({**lease, "spec": spec})
            log.info("%s released Lease %s", self.identity, name)
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("cannot release Lease %s/%s: %s", self.namespace, name, exc)

    async def _delete_expired(self, lease: dict) -> None:
        """Delete the Lease of a replica that has stopped renewing it (an identity carries
        a nonce, so a restarted replica has a new one and never comes back to it)."""
        name = lease["metadata"]["name"]
        try:
            await self.cluster.delete(kinds.LEASE, name, self.namespace)
            log.info("deleted the expired Lease %s of replica %s", name, _holder(lease))
        except NotFound:
            pass
        except ApiError as exc:
            log.info("cannot delete the expired Lease %s: %s", name, exc)


async def _bounded(step, limit: float) -> None:
    """Finish `step` even while being cancelled, within `limit` seconds."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.wait_for(asyncio.shield(task), limit)
    except TimeoutError:
        task.cancel()
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(task, limit)
        except (TimeoutError, asyncio.CancelledError):
            pass
        raise
