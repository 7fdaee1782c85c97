"""Client-side rate limiting of API requests (client-go's QPS/burst token bucket)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """A token bucket of `burst` tokens refilled at `qps` per second; `qps <= 0` disables it.

    Each `acquire` reserves a token at once (the bucket may go into debt) and then sleeps
    until that token is due, so waiters are served in arrival order without holding a lock
    while they sleep.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._updated = clock()

    def available(self) -> float:
        """The tokens in the bucket now (negative: in debt), none taken; infinite when
        disabled."""
        if self.qps <= 0:
            return float("inf")
        elapsed = self._clock() - self._updated
        return min(float(self.burst), self._tokens + elapsed * self.qps)

    def reserve(self) -> float:
        """Take one token; return how many seconds to wait before it may be used."""
        if self.qps <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.qps)
        self._updated = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)
