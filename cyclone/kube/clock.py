"""The time source of controllers: the wall clock they write into objects and the timers
their work queues requeue with, as one object so both can be replaced together.

`SYSTEM_CLOCK` is the real one. `ManualClock` only moves when told to (`advance`), firing
the timers that fall due on the way in order; tests use it to show that a delay, a backoff
or a timeout holds until its moment and acts right after it, without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for comparing timer deadlines."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` (synchronously, on the event loop) once `seconds` have passed."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(seconds, callback)


SYSTEM_CLOCK: Clock = SystemClock()


class _ManualTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that stands still until `advance` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._timers: list[tuple[float, int, _ManualTimer, Callable[[], None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer()
        due = self._elapsed + max(seconds, 0.0)
        heapq.heappush(self._timers, (due, next(self._order), timer, callback))
        return timer

    def pending(self) -> list[float]:
        """Seconds from now until each timer that is still to fire, soonest first."""
        return sorted(due - self._elapsed for due, _, timer, _ in self._timers
                      if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer due by then at its own moment."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        target = self._elapsed + seconds
        while self._timers and self._timers[0][0] <= target:
            due, _, timer, callback = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._elapsed = max(self._elapsed, due)
            callback()
        self._elapsed = target
