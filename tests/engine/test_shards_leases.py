"""Shard Leases between replicas, on the embedded cluster and on a real kube-apiserver: the
shards are divided, a replica that stops renewing stops its work before another takes the
shard, and one that leaves hands its shards over."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.clusters import CLUSTER_FACTORIES, cluster_params, eventually

from cyclone.engine.sharding import fair_share, shard_of
from cyclone.engine.sharding_leases import ShardLeases
from cyclone.engine.sharding_work import ShardWork
from cyclone.kube import kinds
from cyclone.kube.errors import NotFound, Unavailable
from cyclone.kube.leader import LeaseTimings, run_as_leader
from cyclone.kube.protocol import Cluster

SHARDS = 4
TIMINGS = LeaseTimings(lease_duration=1.5, renew_deadline=0.9, retry_period=0.15)
PATIENCE = 60.0


@pytest.fixture(params=cluster_params())
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    async with CLUSTER_FACTORIES[request.param](tmp_path) as opened:
        yield opened


@pytest.fixture
async def namespace(cluster: Cluster) -> AsyncIterator[str]:
    name = f"shards-{secrets.token_hex(4)}"
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await eventually(lambda: cluster.get(kinds.NAMESPACE, name))
    yield name
    with contextlib.suppress(NotFound):
        await cluster.delete(kinds.NAMESPACE, name)


class Severable:
    """The cluster, until `cut` is set: from then on every request fails."""

    def __init__(self, inner: Cluster) -> None:
        self.inner = inner
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.cut:
                raise Unavailable("cut off")
            return await method(*args, **kwargs)

        return call


class Replica:
    """One replica's `ShardWork` and lease loop, recording when it gains shards."""

    def __init__(self, cluster: Any, namespace: str, identity: str,
                 history: list[str]) -> None:
        self.identity = identity
        self.work = ShardWork(SHARDS)
        self.leases = ShardLeases(cluster, self.work, namespace, identity, TIMINGS)
        self.work.on_granted(lambda shard: history.append(f"{identity} holds {shard}"))
        self.task: asyncio.Task | None = None

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.leases.run())
        return self

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def namespace_in(shard: int) -> str:
    return next(f"cyclone-t{index}" for index in range(1000)
                if shard_of(f"cyclone-t{index}", SHARDS) == shard)


async def held(replica: Replica, count: int) -> bool:
    return len(replica.work.held()) == count


async def test_two_replicas_divide_the_shards_and_one_leaving_hands_them_over(
        cluster, namespace):
    history: list[str] = []
    first = Replica(cluster, namespace, "first", history).start()
    try:
        await eventually(lambda: held(first, SHARDS), timeout=PATIENCE)
        second = Replica(cluster, namespace, "second", history).start()
        try:
            share = fair_share(SHARDS, 2)
            await eventually(lambda: held(second, share), timeout=PATIENCE)
            await eventually(lambda: held(first, share), timeout=PATIENCE)
            assert not first.work.held() & second.work.held()
        finally:
            await second.stop()
        assert not second.work.held()
        await eventually(lambda: held(first, SHARDS), timeout=PATIENCE)
        leases = (await cluster.list(kinds.LEASE, namespace)).items
        holders = {lease["metadata"]["name"]: lease["spec"].get("holderIdentity")
                   for lease in leases}
        assert {holders[f"cyclone-engine-shard-{shard}"] for shard in range(SHARDS)} == {
            "first"}
        assert second.leases.replica_lease not in holders
    finally:
        await first.stop()


async def test_replica_whose_renewal_fails_stops_the_shard_before_another_takes_it(
        cluster, namespace):
    history: list[str] = []
    severable = Severable(cluster)
    isolated = Replica(severable, namespace, "isolated", history).start()
    other: Replica | None = None
    shard = 2
    started = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        started.set()
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            history.append(f"isolated cancelled {key}")
            raise
        return None

    guarded = isolated.work.guarded(reconcile, lambda key: key.partition("/")[0])
    try:
        await eventually(lambda: held(isolated, SHARDS), timeout=PATIENCE)
        key = f"{namespace_in(shard)}/run"
        in_flight = asyncio.create_task(guarded(key))
        await started.wait()
        other = Replica(cluster, namespace, "other", history).start()
        await eventually(lambda: other.leases.rounds > 0, timeout=PATIENCE)
        severable.cut = True
        assert await in_flight is None
        assert not isolated.work.owns(namespace_in(shard))
        await eventually(lambda: held(other, SHARDS), timeout=PATIENCE)
        assert await guarded(key) is None
    finally:
        if other is not None:
            await other.stop()
        await isolated.stop()
    cancelled = history.index(f"isolated cancelled {key}")
    assert cancelled < history.index(f"other holds {shard}"), history
    assert history.count(f"isolated cancelled {key}") == 1


async def test_work_of_a_shard_not_held_is_skipped_and_a_lost_one_cancelled():
    work = ShardWork(SHARDS)
    calls: list[str] = []
    gate = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        await gate.wait()
        return 5.0

    guarded = work.guarded(reconcile, lambda key: key.partition("/")[0])
    key = f"{namespace_in(1)}/run"
    assert await guarded(key) is None and calls == []
    work.grant(1, time.monotonic() + 60)
    running = asyncio.create_task(guarded(key))
    await eventually(lambda: calls == [key])
    work.revoke(1)
    assert await running is None
    work.grant(1, time.monotonic() + 60)
    finishing = asyncio.create_task(guarded(key))
    await eventually(lambda: len(calls) == 2)
    gate.set()
    assert await finishing == 5.0
    work.revoke_all()


async def test_a_shard_not_renewed_is_dropped_at_its_deadline():
    work = ShardWork(SHARDS)
    events: list[str] = []

    async def reconcile(key: str) -> float | None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            events.append("cancelled")
        return None

    work.grant(3, time.monotonic() + 0.2)
    outcome = await work.guarded(reconcile, lambda key: key.partition("/")[0])(
        f"{namespace_in(3)}/run")
    assert outcome is None and events == ["cancelled"] and not work.held()


async def test_an_outer_cancellation_is_not_taken_for_a_lost_shard():
    work = ShardWork(SHARDS)
    work.grant(0, time.monotonic() + 60)
    guarded = work.guarded(_forever, lambda key: key.partition("/")[0])
    task = asyncio.create_task(guarded(f"{namespace_in(0)}/run"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    work.revoke_all()


async def test_duty_of_shard_zero_runs_only_while_it_is_held():
    work = ShardWork(SHARDS)
    runs: list[str] = []

    async def duty() -> None:
        runs.append("started")
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            runs.append("stopped")

    task = asyncio.create_task(work.while_holding(0, duty))
    await asyncio.sleep(0.05)
    assert runs == []
    work.grant(0, time.monotonic() + 60)
    await eventually(lambda: runs == ["started"])
    work.revoke(0)
    await eventually(lambda: runs == ["started", "stopped"])
    work.grant(0, time.monotonic() + 60)
    await eventually(lambda: runs == ["started", "stopped", "started"])
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    work.revoke_all()


async def _forever(_key: str) -> float | None:
    await asyncio.get_running_loop().create_future()
    return None


async def test_a_leader_and_sharded_replicas_never_work_at_once(cluster, namespace):
    history: list[str] = []

    def leader_work(identity: str):
        async def work() -> None:
            history.append(f"{identity} leads")
            try:
                await asyncio.get_running_loop().create_future()
            finally:
                history.append(f"{identity} stops leading")

        return work

    leader = asyncio.create_task(run_as_leader(cluster, namespace, "cyclone-engine", "leader",
                                               leader_work("leader"), TIMINGS))
    sharded = Replica(cluster, namespace, "sharded", history)
    standby: asyncio.Task | None = None
    try:
        await eventually(lambda: "leader leads" in history, timeout=PATIENCE)
        sharded.start()
        await eventually(lambda: sharded.leases.rounds > 15, timeout=PATIENCE)
        assert not sharded.work.held()
        leader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader
        await eventually(lambda: held(sharded, SHARDS), timeout=PATIENCE)
        standby = asyncio.create_task(run_as_leader(
            cluster, namespace, "cyclone-engine", "standby", leader_work("standby"), TIMINGS))
        rounds = sharded.leases.rounds
        await eventually(lambda: sharded.leases.rounds > rounds + 15, timeout=PATIENCE)
        assert "standby leads" not in history and len(sharded.work.held()) == SHARDS
        sharded.work.on_granted(lambda shard: history.append("sharded gains after stop"))
        await sharded.stop()
        history.append("sharded stopped")
        await eventually(lambda: "standby leads" in history, timeout=PATIENCE)
    finally:
        for task in (leader, standby):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if sharded.task is not None and not sharded.task.done():
            await sharded.stop()
    first_shard = history.index("sharded holds 0")
    assert history.index("leader stops leading") < first_shard
    assert history.index("sharded stopped") < history.index("standby leads")
    assert "sharded gains after stop" not in history


async def test_replicas_of_another_shard_count_wait_until_the_old_ones_stop(cluster, namespace):
    history: list[str] = []
    old = Replica(cluster, namespace, "old", history).start()
    new = Replica(cluster, namespace, "new", history)
    new.work = ShardWork(2 * SHARDS)
    new.leases = ShardLeases(cluster, new.work, namespace, "new", TIMINGS)
    new.work.on_granted(lambda shard: history.append(f"new holds {shard}"))
    try:
        await eventually(lambda: held(old, SHARDS), timeout=PATIENCE)
        new.start()
        await eventually(lambda: new.leases.rounds > 15, timeout=PATIENCE)
        assert not new.work.held() and len(old.work.held()) == SHARDS
        await old.stop()
        history.append("old stopped")
        await eventually(lambda: held(new, 2 * SHARDS), timeout=PATIENCE)
    finally:
        if old.task is not None and not old.task.done():
            await old.stop()
        if new.task is not None:
            await new.stop()
    assert history.index("old stopped") < min(
        index for index, entry in enumerate(history) if entry.startswith("new holds"))


async def test_keys_of_shards_not_held_are_not_queued():
    work = ShardWork(SHARDS)
    queued: list[str] = []
    add = work.owned_only(queued.append, lambda key: key.partition("/")[0])
    work.grant(1, time.monotonic() + 60)
    add(f"{namespace_in(1)}/run")
    add(f"{namespace_in(2)}/run")
    add("cluster-scoped")
    assert queued == [f"{namespace_in(1)}/run"]
    work.revoke_all()


async def test_the_shards_held_are_on_the_metrics():
    from prometheus_client import REGISTRY

    work = ShardWork(SHARDS)
    work.grant(0, time.monotonic() + 60)
    work.grant(3, time.monotonic() + 60)
    assert REGISTRY.get_sample_value("cyclone_engine_shards_held") == 2
    assert REGISTRY.get_sample_value("cyclone_engine_shard_held", {"shard": "3"}) == 1
    assert REGISTRY.get_sample_value("cyclone_engine_shard_held", {"shard": "1"}) == 0
    work.revoke(3)
    assert REGISTRY.get_sample_value("cyclone_engine_shards_held") == 1
    work.revoke_all()
