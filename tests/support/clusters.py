"""Cluster implementations the contract tests run against, and waiting helpers.

Each factory takes a scratch directory and is an async context manager yielding a
`Cluster`; a factory that cannot run here (no API server) calls `pytest.skip`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.kube.protocol import Cluster
from support.control_plane import kube_cluster

T = TypeVar("T")
ClusterFactory = Callable[[Path], AbstractAsyncContextManager[Cluster]]


@asynccontextmanager
async def embedded_cluster(scratch: Path) -> AsyncIterator[Cluster]:
    async with EmbeddedCluster(scratch / "cluster.db") as cluster:
        yield cluster


CLUSTER_FACTORIES: dict[str, ClusterFactory] = {"embedded": embedded_cluster}
CLUSTER_FACTORIES["kube"] = kube_cluster
REAL_CLUSTERS = {"kube"}


def cluster_params() -> list:
    """The factories' names as fixture params; the real ones marked `k8s`."""
    return [pytest.param(name, marks=pytest.mark.k8s) if name in REAL_CLUSTERS else name
            for name in sorted(CLUSTER_FACTORIES)]


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
    interval: float = 0.02,
) -> T:
    """Call `probe` until it returns a truthy value without raising; return that value.

    The last exception (or a TimeoutError) is raised when `timeout` passes first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            last_error = None
        except (AssertionError, Exception) as exc:
            last_error = exc
        if loop.time() >= deadline:
            if last_error is not None:
                raise last_error
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, 0.25)
