"""Leader election on a Lease: on the embedded cluster and on a real kube-apiserver."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.errors import ApiError, Unavailable
from cyclone.kube.leader import (
    Attempt,
    LeaderElector,
    LeadershipLost,
    LeaseTimings,
    run_as_leader,
)
from cyclone.kube.protocol import Cluster

TIMINGS = LeaseTimings(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)
LEASE = "engine-lock"
PATIENCE = 60.0
"""How long a test waits for something that should happen within a few retry periods."""


class Leaders:
    """Records who runs work, and checks that never two do at once."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.overlaps: list[set[str]] = []
        self.started: dict[str, float] = {}
        self.cancelled: list[str] = []
        self.history: list[str] = []
        self.changed = asyncio.Event()

    def work(self, identity: str):
        async def run() -> None:
            if self.active:
                self.overlaps.append({*self.active, identity})
            self.active.add(identity)
            self.history.append(f"{identity} started")
            self.started[identity] = time.monotonic()
            self.changed.set()
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                self.cancelled.append(identity)
                raise
            finally:
                self.active.discard(identity)
                self.history.append(f"{identity} stopped")
                self.changed.set()

        return run

    async def wait_for_leader(self, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        return next(iter(await eventually(lambda: set(self.active), timeout=timeout)))


class Looking:
    """One candidate's way to the cluster, noting when each of its reads of the lease
    returned. A candidate decides on what it read before it reads again, so a read that
    follows another proves the earlier one was decided."""

    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        self.name = inner.name
        self.reads: list[float] = []

    async def get(self, *args, **kwargs):
        try:
            return await self.inner.get(*args, **kwargs)
        finally:
            self.reads.append(time.monotonic())

    async def replace(self, obj: dict) -> dict:
        return await self.inner.replace(obj)

    async def create(self, obj: dict, **kwargs) -> dict:
        return await self.inner.create(obj, **kwargs)

    async def decided(self, reads: int = 1) -> None:
        """Wait until `reads` more reads of the lease than now have been decided."""
        wanted = len(self.reads) + reads + 1
        await eventually(lambda: len(self.reads) >= wanted, timeout=PATIENCE)

    def judged_after(self, seconds: float) -> bool:
        """Whether a read at least `seconds` after this candidate's first has been decided."""
        return any(later - self.reads[0] >= seconds for later in self.reads[1:-1])


async def lease_spec(cluster: Cluster, namespace: str) -> dict:
    return (await cluster.get(kinds.LEASE, LEASE, namespace))["spec"]


def test_timings_follow_client_go_rules():
    with pytest.raises(ValueError):
        LeaseTimings(lease_duration=5, renew_deadline=5, retry_period=1)
    with pytest.raises(ValueError):
        LeaseTimings(lease_duration=5, renew_deadline=2, retry_period=2)
    assert LeaseTimings(lease_duration=0.4, renew_deadline=0.3, retry_period=0.1) \
        .lease_duration_seconds == 1


async def test_one_candidate_leads_and_the_lease_names_it(cluster, namespace):
    leaders = Leaders()
    views = {name: Looking(cluster) for name in ("a", "b", "c")}
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(run_as_leader(view, namespace, LEASE, name,
                                            leaders.work(name), TIMINGS))
            for name, view in views.items()
        ]
        leader = await leaders.wait_for_leader()
        for name, view in views.items():
            if name != leader:
                await eventually(lambda v=view: v.judged_after(TIMINGS.lease_duration * 2),
                                 timeout=PATIENCE)
        assert leaders.active == {leader}
        spec = await lease_spec(cluster, namespace)
        assert spec["holderIdentity"] == leader
        assert spec["leaseDurationSeconds"] == 1
        for task in tasks:
            task.cancel()
    assert not leaders.overlaps


async def test_follower_takes_over_once_the_lease_expires_by_its_own_clock(cluster, namespace):
    stale = LeaderElector(cluster, namespace, LEASE, "stale", TIMINGS)
    assert await stale.try_acquire_or_renew() is Attempt.ACQUIRED
    leaders = Leaders()
    view = Looking(cluster)
    now = [0.0]
    elector = LeaderElector(view, namespace, LEASE, "follower", TIMINGS, clock=lambda: now[0])
    async with asyncio.TaskGroup() as group:
        follower = group.create_task(elector.lead(leaders.work("follower")))
        await view.decided()
        assert elector.observed_holder == "stale"
        now[0] = TIMINGS.lease_duration * 0.99
        await view.decided()
        assert not leaders.active
        now[0] = TIMINGS.lease_duration
        await leaders.wait_for_leader(timeout=PATIENCE)
        spec = await lease_spec(cluster, namespace)
        assert spec["holderIdentity"] == "follower"
        assert spec["leaseTransitions"] == 1
        follower.cancel()


async def test_cancelled_leader_releases_so_the_next_takes_over_at_once(cluster, namespace):
    slow = LeaseTimings(lease_duration=600, renew_deadline=400, retry_period=0.1)
    leaders = Leaders()
    view = Looking(cluster)
    async with asyncio.TaskGroup() as group:
        first = group.create_task(
            run_as_leader(cluster, namespace, LEASE, "first", leaders.work("first"), slow))
        await leaders.wait_for_leader()
        second = group.create_task(
            run_as_leader(view, namespace, LEASE, "second", leaders.work("second"), slow))
        await view.decided()
        assert leaders.active == {"first"}
        first.cancel()
        assert await eventually(lambda: leaders.active == {"second"}, timeout=PATIENCE)
        second.cancel()
    assert leaders.cancelled == ["first", "second"]
    assert not leaders.overlaps


async def test_work_is_cancelled_when_another_holder_takes_the_lease(cluster, namespace):
    leaders = Leaders()
    elector = LeaderElector(cluster, namespace, LEASE, "leader", TIMINGS)
    lead = asyncio.create_task(elector.lead(leaders.work("leader")))
    try:
        await leaders.wait_for_leader()
        lease = await cluster.get(kinds.LEASE, LEASE, namespace)
        lease["spec"]["holderIdentity"] = "intruder"
        await cluster.replace(lease)
        with pytest.raises(LeadershipLost):
            await asyncio.wait_for(lead, PATIENCE)
    finally:
        lead.cancel()
    assert leaders.cancelled == ["leader"]
    assert not elector.is_leader
    assert (await lease_spec(cluster, namespace))["holderIdentity"] == "intruder"


class Unreachable:
    """A cluster whose lease writes and reads fail while `cut` is set."""

    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        self.cut = False
        self.name = inner.name

    async def get(self, *args, **kwargs):
        if self.cut:
            raise Unavailable("cut off")
        return await self.inner.get(*args, **kwargs)

    async def replace(self, obj: dict) -> dict:
        if self.cut:
            raise Unavailable("cut off")
        return await self.inner.replace(obj)

    async def create(self, obj: dict, **kwargs) -> dict:
        if self.cut:
            raise Unavailable("cut off")
        return await self.inner.create(obj, **kwargs)


async def test_leader_cut_off_stops_before_anyone_else_may_start(cluster, namespace):
    leaders = Leaders()
    cut_off = Unreachable(cluster)
    view = Looking(cluster)
    isolated = asyncio.create_task(run_as_leader(
        cut_off, namespace, LEASE, "isolated", leaders.work("isolated"), TIMINGS,
        reelect=False))
    try:
        async with asyncio.TaskGroup() as group:
            await leaders.wait_for_leader()
            other = group.create_task(
                run_as_leader(view, namespace, LEASE, "other", leaders.work("other"), TIMINGS))
            await view.decided()
            assert leaders.active == {"isolated"}
            cut_off.cut = True
            assert await eventually(lambda: "other" in leaders.active, timeout=PATIENCE)
            assert isolated.done()
            with pytest.raises(LeadershipLost):
                await isolated
            other.cancel()
    finally:
        isolated.cancel()
    assert leaders.history == ["isolated started", "isolated stopped", "other started",
                               "other stopped"]
    assert not leaders.overlaps


async def test_work_that_ends_releases_the_lease(cluster, namespace):
    done = []

    async def work() -> None:
        done.append(True)

    await run_as_leader(cluster, namespace, LEASE, "short", work, TIMINGS)
    assert done == [True]
    assert not (await lease_spec(cluster, namespace)).get("holderIdentity")


async def test_work_errors_propagate_as_themselves(cluster, namespace):
    async def work() -> None:
        raise ApiError("boom")

    with pytest.raises(ApiError, match="boom"):
        await run_as_leader(cluster, namespace, LEASE, "failing", work, TIMINGS)
    assert not (await lease_spec(cluster, namespace)).get("holderIdentity")


async def test_leading_block_is_cancelled_when_leadership_is_lost(cluster, namespace):
    elector = LeaderElector(cluster, namespace, LEASE, "block", TIMINGS)
    reached_end = False
    with pytest.raises(LeadershipLost):
        async with elector.leading():
            lease = await cluster.get(kinds.LEASE, LEASE, namespace)
            lease["spec"]["holderIdentity"] = "intruder"
            await cluster.replace(lease)
            async with asyncio.timeout(PATIENCE):
                await asyncio.get_running_loop().create_future()
            reached_end = True
    assert not reached_end
    assert asyncio.current_task().cancelling() == 0


async def test_leading_block_that_ends_releases(cluster, namespace):
    elector = LeaderElector(cluster, namespace, LEASE, "block", TIMINGS)
    async with elector.leading():
        assert elector.is_leader
        assert (await lease_spec(cluster, namespace))["holderIdentity"] == "block"
    assert not elector.is_leader
    assert not (await lease_spec(cluster, namespace)).get("holderIdentity")


async def test_expiry_is_judged_by_the_followers_clock_not_the_lease_timestamps(
    cluster, namespace
):
    await cluster.create({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": namespace},
        "spec": {"holderIdentity": "skewed", "leaseDurationSeconds": 1,
                 "renewTime": "2000-01-01T00:00:00.000000Z",
                 "acquireTime": "2000-01-01T00:00:00.000000Z"},
    })
    now = [100.0]
    follower = LeaderElector(cluster, namespace, LEASE, "follower", TIMINGS,
                             clock=lambda: now[0])
    assert await follower.try_acquire_or_renew() is Attempt.HELD_BY_OTHER
    now[0] += TIMINGS.lease_duration * 0.9
    assert await follower.try_acquire_or_renew() is Attempt.HELD_BY_OTHER

    lease = await cluster.get(kinds.LEASE, LEASE, namespace)
    lease["spec"]["renewTime"] = "2000-01-01T00:00:01.000000Z"
    await cluster.replace(lease)
    now[0] += TIMINGS.lease_duration * 0.2
    assert await follower.try_acquire_or_renew() is Attempt.HELD_BY_OTHER
    now[0] += TIMINGS.lease_duration * 0.9
    assert await follower.try_acquire_or_renew() is Attempt.HELD_BY_OTHER
    assert follower.observed_holder == "skewed"
    now[0] += TIMINGS.lease_duration * 0.1
    assert await follower.try_acquire_or_renew() is Attempt.ACQUIRED
    spec = await lease_spec(cluster, namespace)
    assert spec["holderIdentity"] == "follower"
    assert spec["leaseTransitions"] == 1
    renewed = datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    assert renewed > datetime.now(UTC) - timedelta(minutes=5)
