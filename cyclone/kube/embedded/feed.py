"""Fan-out of the change log to watchers, fed by in-process writes and by polling the file
(so writes of other processes sharing it are seen too)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from cyclone.kube.embedded.store import Change

FetchChanges = Callable[[int], Awaitable[list[Change]]]


class ChangeFeed:
    """Reads new change-log rows in version order and hands each to every subscriber."""

    def __init__(self, fetch: FetchChanges, position: int, poll_interval: float) -> None:
        self._fetch = fetch
        self._position = position
        self._poll_interval = poll_interval
        self._subscribers: dict[asyncio.Queue[Change | None], str] = {}
        self._wake = asyncio.Event()

    def subscribe(self, kind_key: str) -> asyncio.Queue[Change | None]:
        """A queue that receives every later change to objects of one kind, then None when
        the feed stops."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._subscribers[queue] = kind_key
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        self._subscribers.pop(queue, None)

    def notify(self) -> None:
        """A write happened in this process: read the log now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """End every subscriber's stream."""
        for queue in self._subscribers:
            queue.put_nowait(None)
        self._subscribers.clear()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            batch = await self._fetch(self._position)
            for change in batch:
                self._position = change.rv
                for queue, kind_key in self._subscribers.items():
                    if kind_key == change.kind_key:
                        queue.put_nowait(change)
            if batch:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
