"""One log collector per execution cluster, added and removed as clusters come and go."""

from __future__ import annotations

import asyncio

from cyclone.kube.informer import Informer
from cyclone.kube.protocol import Cluster
from cyclone.server.logs.collector import LogCollector
from cyclone.server.logs.store import LogStore


class LogCollectors:
    """`await run()` collects from every added cluster until cancelled.

    Mirrors the engine's `add_cluster`: whoever registers an execution cluster with the
    engine registers it here too, so its stage pods' logs reach the store. `control` is
    the cluster of the Cyclone objects (default: each collector's own cluster).
    """

    def __init__(self, store: LogStore, *, control: Cluster | None = None,
                 retry_delay: float = 1.0) -> None:
        self.store = store
        self.control = control
        self.retry_delay = retry_delay
        self._collectors: dict[str, LogCollector] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None

    def add_cluster(self, name: str, cluster: Cluster, informer: Informer | None = None) -> None:
        if name in self._collectors:
            return
        self._collectors[name] = LogCollector(cluster, self.store, control=self.control,
                                              informer=informer,
                                              retry_delay=self.retry_delay,
                                              cluster_name=name)
        if self._group is not None:
            self._start(name)

    def remove_cluster(self, name: str) -> None:
        self._collectors.pop(name, None)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    @property
    def clusters(self) -> list[str]:
        return sorted(self._collectors)

    def _start(self, name: str) -> None:
        assert self._group is not None
        self._tasks[name] = self._group.create_task(self._collectors[name].run(),
                                                    name=f"log-collector-{name}")

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                for name in self._collectors:
                    self._start(name)
                await asyncio.get_running_loop().create_future()
            finally:
                self._group = None
