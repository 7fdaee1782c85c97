"""Reaching the cluster a Cluster integration or an ExecutionCluster designates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cyclone.kube import errors
from cyclone.kube.protocol import Cluster
from cyclone.server.state import ClusterLookup


@asynccontextmanager
async def dialled(control: Cluster, lookup: ClusterLookup | None,
                  source: dict) -> AsyncIterator[Cluster]:
    """The cluster of ``source`` (a `spec.cluster`: ``isControlCluster`` or a
    ``credential``): the control cluster, else the server's lookup when it has one, else a
    client of its own, closed on leaving. An unusable credential is the tenant's input and
    answers 400."""
    if source.get("isControlCluster"):
        yield control
        return
    if lookup is not None:
        yield await lookup(source)
        return
    try:
        from cyclone.kube.remote import RemoteCluster
    except ImportError as exc:
        raise errors.Unavailable("remote clusters are not supported by this build") from exc
    try:
        remote = RemoteCluster.from_credential(source.get("credential") or {})
    except errors.ApiError:
        raise
    except Exception as exc:  # any unusable credential is the tenant's input
        raise errors.BadRequest(f"cannot use the cluster credential: {exc}") from exc
    try:
        yield remote
    finally:
        await remote.close()
