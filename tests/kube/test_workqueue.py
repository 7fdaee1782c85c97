import asyncio

import pytest

from cyclone.kube.clock import ManualClock
from cyclone.kube.workqueue import WorkQueue, WorkQueueShutDown


async def test_keys_are_deduplicated_while_waiting() -> None:
    queue = WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]


async def test_key_added_while_processing_is_handed_out_again_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.done(key)
    assert await asyncio.wait_for(waiter, 1) == "a"


async def test_add_after_delays_and_keeps_earliest() -> None:
    queue = WorkQueue()
    queue.add_after("later", 30)
    queue.add_after("later", 0.01)
    queue.add_after("later", 60)
    assert await asyncio.wait_for(queue.get(), 2) == "later"


async def test_rate_limited_backoff_doubles_and_forget_resets() -> None:
    queue = WorkQueue(base_delay=0.001)
    for expected in (1, 2, 3):
        queue.add_rate_limited("k")
        assert queue.num_requeues("k") == expected
        assert await asyncio.wait_for(queue.get(), 2) == "k"
        queue.done("k")
    queue.forget("k")
    assert queue.num_requeues("k") == 0


async def test_backoff_is_capped() -> None:
    clock = ManualClock()
    queue = WorkQueue(base_delay=0.005, max_delay=300, clock=clock)
    delays = []
    for _ in range(40):
        queue.add_rate_limited("k")
        delays.append(queue.scheduled("k"))
        clock.advance(delays[-1])
        assert await asyncio.wait_for(queue.get(), 1) == "k"
        queue.done("k")
    assert delays[0] == pytest.approx(0.005)
    assert delays[1] == pytest.approx(0.010)
    assert delays[-1] == 300
    queue.shutdown()


async def test_add_after_waits_for_its_clock() -> None:
    clock = ManualClock()
    queue = WorkQueue(clock=clock)
    queue.add_after("k", 60)
    queue.add_after("k", 90)
    clock.advance(59.9)
    assert len(queue) == 0 and queue.scheduled("k") == pytest.approx(0.1)
    clock.advance(0.1)
    assert len(queue) == 1 and queue.scheduled("k") is None
    assert await asyncio.wait_for(queue.get(), 1) == "k"


async def test_shutdown_wakes_waiting_workers() -> None:
    queue = WorkQueue()
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.shutdown()
    with pytest.raises(WorkQueueShutDown):
        await asyncio.wait_for(waiter, 1)
    queue.add("ignored")
    assert len(queue) == 0
