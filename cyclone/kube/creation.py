"""Creating a named object, or only checking that it could be created (a dry run)."""

from __future__ import annotations

from cyclone.kube import errors
from cyclone.kube.kinds import kind_of
from cyclone.kube.protocol import Cluster


async def create_named(cluster: Cluster, obj: dict, what: str, *,
                       dry_run: bool = False) -> dict:
    """Create ``obj``; with ``dry_run``, store nothing and answer ``obj`` if its name is
    free. Either way a taken name is `AlreadyExists` naming ``what`` and the name."""
    name = obj["metadata"]["name"]
    namespace = obj["metadata"].get("namespace")
    taken = errors.AlreadyExists(f"{what} {name!r} already exists")
    if dry_run:
        try:
            await cluster.get(kind_of(obj), name, namespace)
        except errors.NotFound:
            return obj
        raise taken
    try:
        return await cluster.create(obj, namespace=namespace)
    except errors.AlreadyExists as exc:
        raise taken from exc
