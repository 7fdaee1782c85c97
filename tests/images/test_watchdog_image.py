"""The PVC watchdog runs the server's GC image (`--gc-image`), as the cache cleaning pods do,
so one setting points both at a registry of one's own; on the embedded cluster and a real
API server."""

from __future__ import annotations

from server.test_clean_cache_pod import MIRROR, tenant  # noqa: F401 (a fixture)
from support.clusters import eventually

from cyclone.kube import errors, kinds
from cyclone.server.watchdog import watchdog_pod_name


async def test_the_watchdog_runs_the_servers_gc_image(tenant) -> None:  # noqa: F811
    _, cluster, namespace = tenant
    name = namespace.removeprefix("cyclone-").removesuffix("-worker")

    async def watchdog() -> dict | None:
        try:
            return await cluster.get(kinds.POD, watchdog_pod_name(name), namespace)
        except errors.NotFound:
            return None

    container = (await eventually(watchdog, timeout=30))["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == (MIRROR, "IfNotPresent")
