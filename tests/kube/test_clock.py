from datetime import UTC, datetime

import pytest

from cyclone.kube.clock import ManualClock


def test_manual_clock_fires_due_timers_in_order_at_their_moment() -> None:
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    fired: list[tuple[str, float]] = []
    clock.call_later(5, lambda: fired.append(("five", clock.monotonic())))
    clock.call_later(2, lambda: fired.append(("two", clock.monotonic())))
    cancelled = clock.call_later(3, lambda: fired.append(("three", clock.monotonic())))
    cancelled.cancel()
    clock.advance(4)
    assert fired == [("two", 2.0)]
    assert clock.pending() == [1.0]
    clock.advance(10)
    assert fired == [("two", 2.0), ("five", 5.0)]
    assert clock.now() == datetime(2030, 1, 1, 0, 0, 14, tzinfo=UTC)
    assert clock.pending() == []


def test_a_timer_set_by_a_firing_timer_fires_within_the_same_advance() -> None:
    clock = ManualClock()
    fired: list[float] = []

    def again() -> None:
        fired.append(clock.monotonic())
        if len(fired) < 3:
            clock.call_later(1, again)

    clock.call_later(1, again)
    clock.advance(10)
    assert fired == [1.0, 2.0, 3.0]


def test_manual_clock_does_not_go_back() -> None:
    with pytest.raises(ValueError):
        ManualClock().advance(-1)
