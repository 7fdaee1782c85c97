import asyncio
from pathlib import Path

from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.clock import ManualClock
from cyclone.kube.controller import Controller
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.informer import Informer


async def test_failures_are_retried_until_success_then_forgotten() -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> None:
        calls.append(key)
        if len(calls) < 3:
            raise RuntimeError("transient")

    controller = Controller("retry", reconcile, workers=2)
    controller.queue._base_delay = 0.001
    async with asyncio.TaskGroup() as group:
        task = group.create_task(controller.run())
        controller.queue.add("ns/a")
        await eventually(lambda: len(calls) == 3 and controller.queue.num_requeues("ns/a") == 0)
        task.cancel()
    assert calls == ["ns/a"] * 3


async def test_float_return_requeues_after_delay() -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> float | None:
        calls.append(key)
        return 0.01 if len(calls) < 2 else None

    controller = Controller("requeue", reconcile)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(controller.run())
        controller.queue.add("k")
        await eventually(lambda: len(calls) == 2)
        task.cancel()


async def test_one_key_is_never_reconciled_concurrently() -> None:
    active: set[str] = set()
    overlaps: list[str] = []
    done: list[str] = []

    async def reconcile(key: str) -> None:
        if key in active:
            overlaps.append(key)
        active.add(key)
        await asyncio.sleep(0.005)
        active.discard(key)
        done.append(key)

    controller = Controller("serial", reconcile, workers=4)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(controller.run())
        for _ in range(10):
            controller.queue.add("same")
            controller.queue.add("other")
            await asyncio.sleep(0.002)
        await eventually(lambda: len(controller.queue) == 0 and not active and done)
        task.cancel()
    assert overlaps == []


async def test_enqueue_on_informer_events(tmp_path: Path) -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        seen.append(key)

    async with EmbeddedCluster(tmp_path / "c.db") as cluster:
        informer = Informer(cluster, kinds.CONFIG_MAP, "default")
        controller = Controller("cm", reconcile)
        controller.enqueue_on(informer)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(informer.run()), group.create_task(controller.run())]
            await informer.wait_synced()
            await cluster.create({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "x", "namespace": "default"}})
            await eventually(lambda: "default/x" in seen)
            for task in tasks:
                task.cancel()


async def test_requeue_and_wait_returns_after_a_reconcile_that_began_later() -> None:
    releases = [asyncio.Event(), asyncio.Event()]
    started: list[int] = []

    async def reconcile(key: str) -> None:
        index = len(started)
        started.append(index)
        await releases[index].wait()

    controller = Controller("wait", reconcile, workers=1)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(controller.run())
        controller.queue.add("k")
        await eventually(lambda: started == [0])
        waiter = asyncio.ensure_future(controller.requeue_and_wait("k"))
        releases[0].set()
        await eventually(lambda: started == [0, 1])
        assert not waiter.done()
        releases[1].set()
        await asyncio.wait_for(waiter, 2)
        task.cancel()


async def test_requeue_after_follows_the_controller_clock() -> None:
    clock = ManualClock()
    calls: list[float] = []

    async def reconcile(key: str) -> float | None:
        calls.append(clock.monotonic())
        return 3600.0 if len(calls) == 1 else None

    controller = Controller("clocked", reconcile, workers=1, clock=clock)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(controller.run())
        await controller.requeue_and_wait("k")
        assert controller.queue.scheduled("k") == 3600.0
        clock.advance(3599)
        assert len(controller.queue) == 0 and calls == [0.0]
        clock.advance(1)
        await eventually(lambda: len(calls) == 2)
        assert calls == [0.0, 3600.0]
        task.cancel()


async def test_reconciles_that_never_wait_leave_other_tasks_their_turn() -> None:
    ticks = 0
    seen_at: list[int] = []

    async def reconcile(key: str) -> None:
        seen_at.append(ticks)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    controller = Controller("busy", reconcile, workers=1)
    for index in range(200):
        controller.queue.add(f"k{index}")
    async with asyncio.TaskGroup() as group:
        clock = group.create_task(ticker())
        task = group.create_task(controller.run())
        await eventually(lambda: len(seen_at) == 200)
        task.cancel()
        clock.cancel()
    assert seen_at[-1] - seen_at[0] >= 150
