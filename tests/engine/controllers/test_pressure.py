"""When the engine counts as behind its work (`controllers.pressure.engine_behind`)."""

from __future__ import annotations

from cyclone.engine.controllers.pressure import engine_behind
from cyclone.kube.remote_ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_runs_waiting_for_a_worker_put_the_engine_behind():
    assert not engine_behind([], None)
    assert engine_behind(["ns/r1"], None)


def test_an_api_client_past_half_its_burst_puts_the_engine_behind_until_it_refills():
    clock = Clock()
    bucket = TokenBucket(qps=10, burst=10, clock=clock)
    for _ in range(5):
        bucket.reserve()
    assert bucket.available() == 5
    assert not engine_behind([], bucket)
    bucket.reserve()
    assert engine_behind([], bucket)
    clock.now = 0.2
    assert bucket.available() == 6
    assert not engine_behind([], bucket)


def test_an_unlimited_client_is_never_behind():
    bucket = TokenBucket(qps=0, burst=1)
    bucket.reserve()
    assert not engine_behind([], bucket)
